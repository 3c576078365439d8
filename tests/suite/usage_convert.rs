//! `usage-convert` run as a binary on hand-written `tres` records: the exact strings Waldur
//! would receive, and clear errors with the right exit codes.

use crate::support::text::assert_contains;
use assert_cmd::cargo::cargo_bin_cmd;

use crate::support::scratch::ScratchFile;

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/convert/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Run usage-convert with the fixture config `cfg` on `input`; (exit code, stdout, stderr).
fn convert_with(cfg: &str, input: &str) -> (i32, String, String) {
    let out = cargo_bin_cmd!("usage-convert")
        .args(["-c", cfg, "--log-level", "error"])
        .write_stdin(input)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Convert and expect success; the output lines.
fn convert(cfg: &str, input: &str) -> Vec<String> {
    let (code, out, err) = convert_with(&fixture(cfg), input);
    assert_eq!(code, 0, "usage-convert failed: {err}");
    out.lines().map(String::from).collect()
}

/// A `tres` record line.
fn tres(account: &str, user: Option<&str>, jobs: u64, seconds: &[(&str, u128)]) -> String {
    let user = user.map_or("null".to_string(), |u| format!("\"{u}\""));
    let map: Vec<String> = seconds
        .iter()
        .map(|(k, v)| format!("\"{k}\":{v}"))
        .collect();
    format!(
        "{{\"kind\":\"tres\",\"period\":\"2024-06\",\"account\":\"{account}\",\"user\":{user},\
         \"jobs\":{jobs},\"tres_seconds\":{{{}}}}}\n",
        map.join(",")
    )
}

/// The `usage` record line usage-convert must write.
fn usage(account: &str, user: Option<&str>, jobs: u64, amounts: &[(&str, &str)]) -> String {
    let user = user.map_or("null".to_string(), |u| format!("\"{u}\""));
    let map: Vec<String> = amounts
        .iter()
        .map(|(k, v)| format!("\"{k}\":\"{v}\""))
        .collect();
    format!(
        "{{\"kind\":\"usage\",\"period\":\"2024-06\",\"account\":\"{account}\",\"user\":{user},\
         \"jobs\":{jobs},\"components\":{{{}}}}}",
        map.join(",")
    )
}

const HOUR: u128 = 3600;

#[test]
fn seed_guide_config_gives_k_hours_and_gb_hours() {
    // The reference's e2e case E3: cpu=64 and mem=256000M for 10 h, 20 h and 30 h.
    // cpu: 64 x 36000 s = 2304000 CPU-s / 60 / 60000 = 0.64 k-Hours (then 1.28, 1.92; total
    // 64 x 216000 = 13824000 / 3600000 = 3.84). mem: 256000 MiB x 36000 s / 60 / 61440 = 2500
    // gb-Hours (then 5000, 7500; total 15000).
    let mut input = String::new();
    for (user, hours) in [("u1", 10), ("u2", 20), ("u3", 30)] {
        input += &tres(
            "hpc_e2e",
            Some(user),
            1,
            &[("cpu", 64 * hours * HOUR), ("mem", 256_000 * hours * HOUR)],
        );
    }
    input += &tres(
        "hpc_e2e",
        None,
        3,
        &[("cpu", 64 * 60 * HOUR), ("mem", 256_000 * 60 * HOUR)],
    );
    assert_eq!(
        convert("seed.yaml", &input),
        [
            usage(
                "hpc_e2e",
                Some("u1"),
                1,
                &[("cpu", "0.64"), ("mem", "2500.00")]
            ),
            usage(
                "hpc_e2e",
                Some("u2"),
                1,
                &[("cpu", "1.28"), ("mem", "5000.00")]
            ),
            usage(
                "hpc_e2e",
                Some("u3"),
                1,
                &[("cpu", "1.92"), ("mem", "7500.00")]
            ),
            // The total carries every configured component: no GPU was used, so "0.00".
            usage(
                "hpc_e2e",
                None,
                3,
                &[("cpu", "3.84"), ("gres/gpu", "0.00"), ("mem", "15000.00")]
            ),
        ]
    );
    // The brief's example: 60000 CPU-minutes = 1 k-Hour; 61440 MiB-minutes = 1 gb-Hour.
    assert_eq!(
        convert(
            "seed.yaml",
            &tres(
                "a",
                Some("u"),
                1,
                &[("cpu", 60_000 * 60), ("mem", 61_440 * 60)]
            )
        ),
        [usage(
            "a",
            Some("u"),
            1,
            &[("cpu", "1.00"), ("mem", "1.00")]
        )]
    );
}

#[test]
fn mapped_node_hours_match_the_reference_e1_case_and_apply_unit_factor() {
    // E1: cpu=640, gpu=80 for one hour: 2304000 cpu-s / 60 / 64 = 600 plus
    // 288000 gpu-s / 60 / 8 = 600, so 1200 node-minutes (the reference's integer 1200).
    let input = tres(
        "account1",
        Some("user1"),
        1,
        &[("cpu", 640 * HOUR), ("gpu", 80 * HOUR)],
    );
    assert_eq!(
        convert("node-hours.yaml", &input),
        [usage(
            "account1",
            Some("user1"),
            1,
            &[("node_hours", "1200.00")]
        )]
    );
    // With unit_factor 60 the same usage is 1200 / 60 = 20 node-hours (the reference would
    // ignore the unit_factor in mapping mode and still say 1200).
    assert_eq!(
        convert("node-hours-60.yaml", &input),
        [usage(
            "account1",
            Some("user1"),
            1,
            &[("node_hours", "20.00")]
        )]
    );
    // E1's last case: only TRES no component reads (billing, energy): a user gets no component,
    // the account total gets node_hours 0.00. 30 cpu-s alone: 30 / 60 / 64 / 60 = 1/7680 -> 0.00.
    let input = tres(
        "account1",
        Some("user1"),
        1,
        &[("billing", 999), ("energy", 50)],
    ) + &tres("account1", Some("user2"), 1, &[("cpu", 30)])
        + &tres(
            "account1",
            None,
            2,
            &[("billing", 999), ("energy", 50), ("cpu", 30)],
        );
    assert_eq!(
        convert("node-hours-60.yaml", &input),
        [
            usage("account1", Some("user1"), 1, &[]),
            usage("account1", Some("user2"), 1, &[("node_hours", "0.00")]),
            usage("account1", None, 2, &[("node_hours", "0.00")]),
        ]
    );
}

#[test]
fn exact_ties_round_half_to_even() {
    // cpu in CPU-hours: amount = seconds / 3600, so each input is an exact x.xx5.
    // 450 s = 0.125 -> 0.12 (2 even); 486 s = 0.135 -> 0.14; 9630 s = 2.675 -> 2.68 (Python's
    // float round gives 2.67); 18 s = 0.005 -> 0.00; 54 s = 0.015 -> 0.02; 3582 s = 0.995 ->
    // 1.00; 451 s = 0.12527.. -> 0.13 (not a tie).
    let cases = [
        (450, "0.12"),
        (486, "0.14"),
        (9630, "2.68"),
        (18, "0.00"),
        (54, "0.02"),
        (3582, "1.00"),
        (451, "0.13"),
    ];
    let input: String = cases
        .iter()
        .map(|(s, _)| tres("a", Some("u"), 1, &[("cpu", *s)]))
        .collect();
    let want: Vec<String> = cases
        .iter()
        .map(|(_, a)| usage("a", Some("u"), 1, &[("cpu", a)]))
        .collect();
    assert_eq!(convert("hours.yaml", &input), want);
}

#[test]
fn values_beyond_two_to_the_64_stay_exact() {
    // cpu = 2^70 CPU-s: 2^70 / 3600000 = 9223372036854775808 / 28125 = 327942116865947.584.. -> .58
    // mem = 2^64 x 61440 x 60 + 1 MiB-s: 2^64 gb-Hours plus 1/3686400 -> 18446744073709551616.00,
    // an amount that itself does not fit in 64 bits.
    let mem = (1u128 << 64) * 61_440 * 60 + 1;
    assert_eq!(
        convert(
            "seed.yaml",
            &tres("big", None, 1, &[("cpu", 1 << 70), ("mem", mem)])
        ),
        [usage(
            "big",
            None,
            1,
            &[
                ("cpu", "327942116865947.58"),
                ("gres/gpu", "0.00"),
                ("mem", "18446744073709551616.00")
            ]
        )]
    );
}

#[test]
fn zero_usage_is_reported_as_zero_for_present_and_all_components_of_totals() {
    // A user whose jobs ran 0 s has cpu and mem present with 0; an idle account total has
    // every component at 0.00.
    let input = tres("idle", Some("u"), 1, &[("cpu", 0), ("mem", 0)]) + &tres("idle", None, 0, &[]);
    assert_eq!(
        convert("seed.yaml", &input),
        [
            usage("idle", Some("u"), 1, &[("cpu", "0.00"), ("mem", "0.00")]),
            usage(
                "idle",
                None,
                0,
                &[("cpu", "0.00"), ("gres/gpu", "0.00"), ("mem", "0.00")]
            ),
        ]
    );
}

#[test]
fn totals_are_converted_from_the_raw_total_not_summed_from_rounded_users() {
    // Three users with 14400 CPU-s each: 14400 / 3600000 = 0.004 k-Hours -> 0.00 each;
    // the total 43200 / 3600000 = 0.012 -> 0.01 (the sum of rounded users would be 0.00).
    let mut input = String::new();
    for u in ["a", "b", "c"] {
        input += &tres("hpc_x", Some(u), 1, &[("cpu", 14_400)]);
    }
    input += &tres("hpc_x", None, 3, &[("cpu", 43_200)]);
    let out = convert("seed.yaml", &input);
    assert_eq!(out[0], usage("hpc_x", Some("a"), 1, &[("cpu", "0.00")]));
    assert_eq!(
        out[3],
        usage(
            "hpc_x",
            None,
            3,
            &[("cpu", "0.01"), ("gres/gpu", "0.00"), ("mem", "0.00")]
        )
    );
}

#[test]
fn period_records_pass_through_and_period_end_still_matches() {
    let period = r#"{"kind":"period","period":"2024-06","start":"2024-06-01T00:00:00+03:00","end":"2024-07-01T00:00:00+03:00","timezone":"Europe/Tallinn","index":1,"count":1,"closed":true}"#;
    let end = r#"{"kind":"period_end","period":"2024-06","records":2,"jobs":1,"lines":1,"skipped_lines":0}"#;
    let input = format!(
        "{period}\n{}{}{end}\n",
        tres("a", Some("u"), 1, &[("cpu", 3_600_000)]),
        tres("a", None, 1, &[("cpu", 3_600_000)])
    );
    let out = convert("seed.yaml", &input);
    assert_eq!(out.len(), 4);
    assert_eq!(out[0], period);
    assert_eq!(out[3], end);
    // records: 2 in period_end, and exactly 2 usage records between.
    assert_eq!(
        out.iter()
            .filter(|l| l.starts_with("{\"kind\":\"usage\""))
            .count(),
        2
    );
}

#[test]
fn input_that_is_not_tres_exits_65_naming_the_line() {
    let cfg = fixture("seed.yaml");
    let converted = usage("a", None, 1, &[("cpu", "1.00")]) + "\n";
    let job = r#"{"kind":"job","period":"2024-06","job_id":"1","account":"a","user":"u","state":"COMPLETED","elapsed_seconds":1,"tres_seconds":{}}"#;
    let cases = [
        (
            tres("a", None, 1, &[]) + &converted,
            "input line 2: a `usage` record: the input is already converted (run usage-convert once, on slurm-usage's output)",
        ),
        (
            format!("{job}\n"),
            "input line 1: a `job` record: per-job audit records (slurm-usage --jobs) are not converted; run slurm-usage without --jobs",
        ),
        (
            "{\"kind\":\"tres\",\"period\":\"2024-06\",\"account\":\"a\"}\n".to_string(),
            "input line 1: bad `tres` record: missing field `user` at line 1 column 48",
        ),
        (
            "hpc_a|cpu=1|00:01:00|u\n".to_string(),
            "input line 1: not valid JSON: expected value at line 1 column 1",
        ),
        (
            tres("a", Some("u"), 1, &[("cpu", 1)]).replace("\"cpu\":1", "\"cpu\":-1"),
            "input line 1: bad `tres` record: number out of range at line 1 column 91",
        ),
        (
            // A key twice: which value would win is up to the parser, so neither is billed.
            tres("a", None, 1, &[("cpu", 3_600_000)])
                .replace("\"cpu\":3600000", "\"cpu\":3600000,\"cpu\":7200000"),
            "input line 1: bad `tres` record: the key \"cpu\" comes twice at line 1 column 104",
        ),
    ];
    for (input, message) in cases {
        let (code, _, err) = convert_with(&cfg, &input);
        assert_eq!(
            (code, err),
            (65, format!("usage-convert: error: {message}\n")),
            "{input}"
        );
    }
}

#[test]
fn an_amount_too_large_for_exact_arithmetic_exits_65_instead_of_a_wrong_number() {
    // unit_factor 0.0001 multiplies by 10000 / 60; u128::MAX CPU-s times that cannot fit.
    let cfg = temp_config(
        "offerings:\n  - name: T\n    waldur_api_url: https://w.example/api/\n    waldur_offering_uuid: 0123456789abcdef0123456789abcdef\n    backend_components:\n      cpu: { unit_factor: 0.0001 }\n",
    );
    let (code, out, err) = convert_with(cfg.as_str(), &tres("a", None, 1, &[("cpu", u128::MAX)]));
    assert_eq!((code, out.as_str()), (65, ""));
    assert_eq!(
        err,
        "usage-convert: error: input line 1: component \"cpu\" for account \"a\" (total) in 2024-06: \
         the amount is too large for exact 128-bit arithmetic; refusing to report a wrong number\n"
    );
}

#[test]
fn bad_factors_exit_78_naming_the_key() {
    let base = std::fs::read_to_string(fixture("seed.yaml")).unwrap();
    let cases = [
        (
            "unit_factor: 61440",
            "unit_factor: 0",
            "offerings[0].backend_components.mem.unit_factor: expected a number greater than 0, found 0",
        ),
        (
            "unit_factor: 60000",
            "unit_factor: -60000",
            "offerings[0].backend_components.cpu.unit_factor: expected a number greater than 0, found -60000",
        ),
        (
            "unit_factor: 60\n",
            "unit_factor: sixty\n",
            "offerings[0].backend_components.gres/gpu.unit_factor: expected a number greater than 0, found \"sixty\"",
        ),
    ];
    for (from, to, message) in cases {
        let cfg = temp_config(&base.replace(from, to));
        let (code, _, err) = convert_with(cfg.as_str(), &tres("a", None, 1, &[]));
        assert_eq!(
            (code, err),
            (
                78,
                format!("usage-convert: error: {}: {message}\n", cfg.as_str())
            )
        );
    }
    let mapped = std::fs::read_to_string(fixture("node-hours.yaml")).unwrap();
    let cfg = temp_config(&mapped.replace("factor: 8.0", "factor: -8"));
    let (code, _, err) = convert_with(cfg.as_str(), "");
    assert_eq!(
        (code, err),
        (
            78,
            format!(
                "usage-convert: error: {}: offerings[0].backend_components.node_hours.target_components.gpu.factor: expected a number greater than 0, found -8\n",
                cfg.as_str()
            )
        )
    );
    // A missing config file is a configuration error too.
    let (code, _, err) = convert_with("/nonexistent/cfg.yaml", "");
    assert_eq!(code, 78, "{err}");
    assert!(
        err.starts_with("usage-convert: error: /nonexistent/cfg.yaml: cannot read the config file"),
        "{err}"
    );
}

#[test]
fn a_component_that_measures_nothing_is_a_config_error_exit_78() {
    // SLURM reports GPUs as gres/gpu, never as `gpu`: a component named `gpu`, or one mapped
    // from nothing SLURM reports, would bill 0.00 for every resource without a word.
    let base = std::fs::read_to_string(fixture("seed.yaml")).unwrap();
    let cases = [
        (
            "      gres/gpu:\n",
            "      gpu:\n",
            "offerings[0].backend_components.gpu: SLURM reports no TRES named \"gpu\", so this \
             component would be 0.00 for every resource (did you mean gres/gpu?): name it after a \
             TRES (cpu, mem, node, billing, gres/NAME, license/NAME, ...) or map it with \
             target_components",
        ),
        (
            "      gres/gpu:\n",
            "      gres/gpu:\n        target_components: {}\n",
            "offerings[0].backend_components.gres/gpu.target_components: names no TRES, so this \
             component would be 0.00 for every resource: list the TRES it adds up, or remove \
             target_components to read the TRES of the same name",
        ),
        (
            "      gres/gpu:\n",
            "      gres/gpu:\n        target_components: { gpu: { factor: 1 } }\n",
            "offerings[0].backend_components.gres/gpu.target_components: names no TRES that SLURM \
             reports (\"gpu\" (did you mean gres/gpu?)), so this component would be 0.00 for every \
             resource: use TRES names (cpu, mem, node, billing, gres/NAME, license/NAME, ...)",
        ),
    ];
    for (from, to, message) in cases {
        assert!(base.contains(from));
        let cfg = temp_config(&base.replace(from, to));
        let (code, out, err) = convert_with(cfg.as_str(), &tres("hpc_a", None, 1, &[]));
        assert_eq!(
            (code, out.as_str(), err),
            (
                78,
                "",
                format!("usage-convert: error: {}: {message}\n", cfg.as_str())
            )
        );
    }
    // A limit component is not measured, so it is not checked.
    let limit = base.replace(
        "      gres/gpu:\n",
        "      storage:\n        accounting_type: \"limit\"\n      gres/gpu:\n",
    );
    let cfg = temp_config(&limit);
    let (code, _, err) = convert_with(cfg.as_str(), "");
    assert_ne!(code, 78, "{err}");
}

#[test]
fn help_explains_the_formulas_and_version_works() {
    let out = cargo_bin_cmd!("usage-convert")
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "tres_seconds[c] / 60 / unit_factor",
        "target_components",
        "half to even",
        "--offering",
        "--log-level",
        "--version",
        "Examples:",
    ] {
        assert!(help.contains(needle), "help lacks {needle:?}:\n{help}");
    }
    let out = cargo_bin_cmd!("usage-convert")
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("usage-convert {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// A config file of its own, removed on drop.
fn temp_config(text: &str) -> ScratchFile {
    ScratchFile::new("usage-convert", "config.yaml", text)
}

/// Run `slurm-usage ARGS` and pipe its stdout through `usage-convert -c cfg`; the usage lines.
fn slurm_usage_then_convert(cfg: &str, args: &[&str], stdin: &str) -> Vec<String> {
    let tres = cargo_bin_cmd!("slurm-usage")
        .args(["-c", cfg, "--log-level", "error"])
        .args(args)
        .write_stdin(stdin)
        .output()
        .unwrap();
    assert!(
        tres.status.success(),
        "slurm-usage failed: {}",
        String::from_utf8_lossy(&tres.stderr)
    );
    let out = cargo_bin_cmd!("usage-convert")
        .args(["-c", cfg, "--log-level", "error"])
        .write_stdin(tres.stdout)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "usage-convert failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("{\"kind\":\"usage\""))
        .map(String::from)
        .collect()
}

/// `usage` line of period 2024-03 (the sample month).
fn usage_in(
    period: &str,
    account: &str,
    user: Option<&str>,
    jobs: u64,
    amounts: &[(&str, &str)],
) -> String {
    usage(account, user, jobs, amounts).replace(
        "\"period\":\"2024-06\"",
        &format!("\"period\":\"{period}\""),
    )
}

#[test]
fn reference_e7_fixture_gives_the_reference_agents_reported_values() {
    // notes/reference-agent.md section 9, E7: ReqTRES x Elapsed (--compat reference), seed config
    // plus gres/gpu unit_factor 60, Tallinn, now 2024-06-15. hpc_alloc1 total:
    // cpu 4 x 3600 + 64 x 86400 + 1 x 3 + 2 x 0 = 5544003 CPU-s / 3600000 = 1.54000083 -> 1.54;
    // mem 8192 x 3600 + 256000 x 86400 + 100 x 3 = 22147891500 MiB-s / 3686400 = 6008.0065 -> 6008.00;
    // gpu 2 x 86400 = 172800 / 3600 = 48.00. hpc_alloc2: cpu 2 x 1800 = 3600 / 3600000 = 0.001 ->
    // 0.00; mem 2048 x 1800 / 3686400 = 1.00. The agent reports 1.54 / 6008.00 / 48.00 and
    // 0.00 / 1.00; our total also carries gres/gpu 0.00 for hpc_alloc2 (every component).
    let got = slurm_usage_then_convert(
        &fixture("seed.yaml"),
        &[
            "--period",
            "2024-06",
            "--input",
            &fixture("e7-sacct.txt"),
            "--fields",
            "Account,ReqTRES,Elapsed,User",
            "--compat",
            "reference",
            "--now",
            "2024-06-15T12:00:00+03:00",
        ],
        "",
    );
    assert_eq!(
        got,
        [
            usage(
                "hpc_alloc1",
                None,
                4,
                &[("cpu", "1.54"), ("gres/gpu", "48.00"), ("mem", "6008.00")]
            ),
            usage(
                "hpc_alloc1",
                Some("alice"),
                2,
                &[("cpu", "0.00"), ("mem", "8.00")]
            ),
            usage(
                "hpc_alloc1",
                Some("bob"),
                1,
                &[("cpu", "1.54"), ("gres/gpu", "48.00"), ("mem", "6000.00")]
            ),
            usage(
                "hpc_alloc1",
                Some("carol"),
                1,
                &[("cpu", "0.00"), ("mem", "0.00")]
            ),
            usage(
                "hpc_alloc2",
                None,
                1,
                &[("cpu", "0.00"), ("gres/gpu", "0.00"), ("mem", "1.00")]
            ),
            usage(
                "hpc_alloc2",
                Some("dave"),
                1,
                &[("cpu", "0.00"), ("mem", "1.00")]
            ),
        ]
    );
}

#[test]
fn the_bundled_sample_month_converts_to_pinned_amounts() {
    // The offline pipeline of shell/demo: month-split | slurm-usage --input | usage-convert.
    // The amounts were checked against an independent model (Python Fractions over
    // AllocTRES x ElapsedRaw with --duplicates, half-even Decimal rounding). Two worked out:
    // hpc_ml GPUs: 4x43440 + 43228 + 2x259762 + 4x43303 + 2x86448 + 4x43524 + 86408 + 259361 +
    // 4x11399 = 1648081 GPU-s / 3600 = 457.8003 -> 457.80 (typed gres/gpu:a100 not counted twice);
    // grace: 218 + 142 + 626 = 986 CPU-s / 3600000 -> 0.00; 2000 MiB x 986 s / 3686400 = 0.5349 -> 0.53.
    // The `physics` account has no hpc_ prefix and is not reported.
    let cfg = format!(
        "{}/sample/waldur-site-agent-config.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let dump = format!("{}/sample/sacct-2024-03.txt", env!("CARGO_MANIFEST_DIR"));
    let periods = cargo_bin_cmd!("month-split")
        .args([
            "-c",
            &cfg,
            "--start",
            "2024-03",
            "--end",
            "2024-03",
            "--log-level",
            "error",
        ])
        .output()
        .unwrap();
    assert!(periods.status.success());
    let got = slurm_usage_then_convert(
        &cfg,
        &["--input", &dump],
        &String::from_utf8(periods.stdout).unwrap(),
    );
    let m = "2024-03";
    assert_eq!(
        got,
        [
            usage_in(
                m,
                "hpc_astro",
                None,
                13,
                &[("cpu", "69.23"), ("gres/gpu", "0.00"), ("mem", "253536.33")]
            ),
            usage_in(
                m,
                "hpc_astro",
                Some("carol"),
                5,
                &[("cpu", "26.02"), ("mem", "95286.85")]
            ),
            usage_in(
                m,
                "hpc_astro",
                Some("dave"),
                4,
                &[("cpu", "14.87"), ("mem", "54440.49")]
            ),
            usage_in(
                m,
                "hpc_astro",
                Some("erin"),
                4,
                &[("cpu", "28.35"), ("mem", "103808.98")]
            ),
            usage_in(
                m,
                "hpc_bio",
                None,
                11,
                &[("cpu", "0.12"), ("gres/gpu", "0.00"), ("mem", "453.66")]
            ),
            usage_in(
                m,
                "hpc_bio",
                Some("frank"),
                8,
                &[("cpu", "0.12"), ("mem", "453.12")]
            ),
            usage_in(
                m,
                "hpc_bio",
                Some("grace"),
                3,
                &[("cpu", "0.00"), ("mem", "0.53")]
            ),
            usage_in(
                m,
                "hpc_chem",
                None,
                12,
                &[("cpu", "11.96"), ("gres/gpu", "0.00"), ("mem", "46733.26")]
            ),
            usage_in(
                m,
                "hpc_chem",
                Some("alice"),
                6,
                &[("cpu", "11.74"), ("mem", "45873.89")]
            ),
            usage_in(
                m,
                "hpc_chem",
                Some("bob"),
                6,
                &[("cpu", "0.22"), ("mem", "859.38")]
            ),
            usage_in(
                m,
                "hpc_ml",
                None,
                9,
                &[("cpu", "3.66"), ("gres/gpu", "457.80"), ("mem", "28612.52")]
            ),
            usage_in(
                m,
                "hpc_ml",
                Some("heidi"),
                5,
                &[("cpu", "2.41"), ("gres/gpu", "301.63"), ("mem", "18851.94")]
            ),
            usage_in(
                m,
                "hpc_ml",
                Some("ivan"),
                4,
                &[("cpu", "1.25"), ("gres/gpu", "156.17"), ("mem", "9760.57")]
            ),
        ]
    );
}

#[test]
fn a_passthrough_component_keeps_its_unit_factor_next_to_a_mapped_one() {
    // The Python agent drops every unit_factor once one component is mapped (it would report
    // mem as 61440 raw MiB-minutes here). We keep it: 3686400 MiB-s / 60 / 61440 = 1.00 gb-Hours;
    // node_hours from cpu 64 x 3600 s / 60 / 64 = 60 node-minutes, / unit_factor 60 = 1.00.
    let cfg = temp_config(
        "offerings:\n  - name: T\n    waldur_api_url: https://w.example/api/\n    \
         waldur_offering_uuid: 0123456789abcdef0123456789abcdef\n    backend_components:\n      \
         mem: { unit_factor: 61440 }\n      node_hours:\n        unit_factor: 60\n        \
         target_components: { cpu: { factor: 64 } }\n",
    );
    let (code, out, err) = convert_with(
        cfg.as_str(),
        &tres("a", None, 1, &[("cpu", 64 * HOUR), ("mem", 3_686_400)]),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        usage("a", None, 1, &[("mem", "1.00"), ("node_hours", "1.00")]) + "\n"
    );
}

#[test]
fn a_record_naming_a_month_that_does_not_exist_is_refused_with_its_line() {
    // The same month type as the other tools: 2024-13 and "March" are no months.
    for bad in ["2024-13", "March"] {
        let input = tres("hpc_a", None, 1, &[("cpu", 60)]).replace("2024-06", bad);
        let (code, out, err) = convert_with(&fixture("seed.yaml"), &input);
        assert_eq!(code, 65, "{err}");
        assert!(out.is_empty(), "{out}");
        assert_contains(
            &err,
            &format!("input line 1: {bad:?} is not a month; write it as YYYY-MM, e.g. 2024-03"),
        );
    }
}
