//! Talking to the dev cluster that `shell/slurm-dev-cluster up` started: the preflight check,
//! running SLURM commands, submitting jobs as the test users and waiting for them.

use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The cluster name `slurm-dev-cluster` registers.
pub const CLUSTER: &str = "ci";

/// The Linux users `slurm-dev-cluster` creates; the test owns their jobs.
pub const USERS: [&str; 3] = ["hpcuser1", "hpcuser2", "hpcuser3"];

/// Set to `skip` to skip the end-to-end tests on purpose.
pub const SKIP_VAR: &str = "WALDUR_USAGE_E2E";

/// What to do when the cluster is not there.
pub const HOW_TO_START: &str = "\
The end-to-end tests need root and the single-node dev cluster. Start it with
    sudo shell/slurm-dev-cluster install   # Debian packages, once
    sudo shell/slurm-dev-cluster up
then run `sudo cargo test --test suite e2e` (`shell/slurm-dev-cluster down` stops it again).
To skip these tests on purpose, set WALDUR_USAGE_E2E=skip.";

/// The dev cluster, as the e2e tests of the one test binary share it: the `e2e_slurm` tests use
/// it side by side ([`shared`]); `e2e_diagnose` stops slurmdbd for a moment, so it waits until
/// no other e2e test uses the cluster and keeps it to itself ([`exclusive`]).
static IN_USE: RwLock<()> = RwLock::new(());

/// Hold for as long as a test needs the cluster up; others may hold it too.
pub fn shared() -> RwLockReadGuard<'static, ()> {
    IN_USE.read().unwrap_or_else(PoisonError::into_inner)
}

/// Hold while a test stops a part of the cluster: no other e2e test runs meanwhile.
pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    IN_USE.write().unwrap_or_else(PoisonError::into_inner)
}

/// Whether the caller asked to skip the end-to-end tests (`WALDUR_USAGE_E2E=skip`).
pub fn skipped_on_purpose() -> bool {
    std::env::var(SKIP_VAR).is_ok_and(|v| v == "skip")
}

/// Checks that the test can run: root, slurmctld and slurmdbd answering, the cluster known to
/// accounting, the node usable and the test users present. The error says what is missing.
pub fn preflight() -> Result<(), String> {
    let uid = std::fs::metadata("/proc/self")
        .map_err(|e| format!("cannot read /proc/self: {e}"))?
        .uid();
    if uid != 0 {
        return Err(format!(
            "not running as root (uid {uid}): the test submits jobs as {USERS:?} through runuser"
        ));
    }
    let ping = slurm("scontrol", &["ping"])?;
    if !ping.contains("is UP") {
        return Err(format!(
            "slurmctld is not up: `scontrol ping` says {ping:?}"
        ));
    }
    let clusters = slurm(
        "sacctmgr",
        &["-n", "-P", "show", "cluster", "format=cluster"],
    )?;
    if !clusters.lines().any(|c| c.trim() == CLUSTER) {
        return Err(format!(
            "accounting does not know cluster {CLUSTER:?} (sacctmgr lists {clusters:?})"
        ));
    }
    let state = slurm("sinfo", &["-h", "-o", "%T"])?;
    if !matches!(state.trim(), "idle" | "mixed" | "allocated") {
        return Err(format!("the node is {:?}, not usable", state.trim()));
    }
    for user in USERS {
        slurm("id", &["-u", user]).map_err(|_| format!("Linux user {user} is missing"))?;
    }
    Ok(())
}

/// Runs a command and returns its stdout; the error names the command and carries its stderr.
pub fn run(command: &mut Command) -> Result<String, String> {
    let shown = format!("{command:?}");
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{shown}: cannot start: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{shown}: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("{shown}: output is not UTF-8: {e}"))
}

/// Runs a SLURM client (or any) command as root.
pub fn slurm(program: &str, args: &[&str]) -> Result<String, String> {
    run(Command::new(program).args(args))
}

/// Polls `probe` every 0.5 s until it returns `Some`, for at most `limit`.
pub fn wait_until<T>(
    limit: Duration,
    what: &str,
    mut probe: impl FnMut() -> Result<Option<T>, String>,
) -> Result<T, String> {
    let started = Instant::now();
    loop {
        if let Some(value) = probe()? {
            return Ok(value);
        }
        if started.elapsed() > limit {
            return Err(format!("timed out after {limit:?} waiting for {what}"));
        }
        sleep(Duration::from_millis(500));
    }
}

/// One job of the mix, as submitted.
#[derive(Debug, Clone)]
pub struct Job {
    /// Job name (`-J`), also how the test refers to it.
    pub name: &'static str,
    /// Linux user that submitted it.
    pub user: &'static str,
    /// SLURM account it ran under.
    pub account: &'static str,
    /// The id sbatch printed (the array's id for an array).
    pub id: String,
    /// How the allocation must end, as sacct's State starts (`RUNNING` for the job still
    /// running at report time).
    pub outcome: &'static str,
    /// Number of allocations it makes (array tasks).
    pub allocations: usize,
}

/// What to submit.
pub struct Spec {
    /// `-J`.
    pub name: &'static str,
    /// Submitting user.
    pub user: &'static str,
    /// `-A`.
    pub account: &'static str,
    /// Further sbatch options.
    pub options: &'static [&'static str],
    /// The batch script body (`--wrap`).
    pub script: &'static str,
    /// Expected final state (prefix of sacct's State).
    pub outcome: &'static str,
}

/// Submits a batch job as its user (`runuser -u USER -- sbatch ...`).
pub fn sbatch(spec: &Spec) -> Result<Job, String> {
    let mut command = Command::new("runuser");
    command
        .args(["-u", spec.user, "--", "sbatch", "--parsable"])
        .args(["-J", spec.name, "-A", spec.account, "-p", "debug"])
        .args(["--chdir=/tmp", "--output=/dev/null", "--error=/dev/null"])
        .args(spec.options)
        .args(["--wrap", spec.script]);
    let out = run(&mut command)?;
    // `--parsable` prints `ID` or `ID;CLUSTER`.
    let id = out.trim().split(';').next().unwrap_or_default().to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "sbatch for {} printed {out:?}, not a job id",
            spec.name
        ));
    }
    let allocations = spec
        .options
        .iter()
        .find_map(|o| o.strip_prefix("--array=1-"))
        .map_or(1, |n| n.parse().expect("array spec 1-N"));
    Ok(Job {
        name: spec.name,
        user: spec.user,
        account: spec.account,
        id,
        outcome: spec.outcome,
        allocations,
    })
}

/// Starts an interactive `srun` (no sbatch) as `user`; [`finish_srun`] collects its job id.
pub fn spawn_srun(
    user: &str,
    account: &str,
    name: &str,
    options: &[&str],
) -> Result<Child, String> {
    Command::new("runuser")
        .args([
            "-u", user, "--", "srun", "-J", name, "-A", account, "-p", "debug",
        ])
        .args(["--chdir=/tmp"])
        .args(options)
        // The step prints its own job id, the only way to learn it.
        .args(["sh", "-c", "echo $SLURM_JOB_ID; sleep 1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start srun as {user}: {e}"))
}

/// Waits for an interactive srun and returns its job id.
pub fn finish_srun(child: Child) -> Result<String, String> {
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for srun: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "srun failed: {}; stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let id = stdout.trim().to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("srun printed {stdout:?}, not a job id"));
    }
    Ok(id)
}

/// The queue state of a job and the reason, as `squeue` shows them (`None` once it left).
pub fn queue_state(id: &str) -> Result<Option<(String, String)>, String> {
    let out = Command::new("squeue")
        .args(["-h", "-j", id, "-o", "%T|%r"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("squeue: {e}"))?;
    // A job that left slurmctld's memory makes squeue fail with "Invalid job id".
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .next()
        .and_then(|l| l.split_once('|'))
        .map(|(s, r)| (s.to_string(), r.to_string())))
}

/// Waits until the job is in queue state `want` (`RUNNING`, `PENDING`), and when `reason` is
/// given, until squeue also shows that reason (a new job shows `None` until the scheduler
/// looked at it).
pub fn wait_queue_state(
    job: &Job,
    want: &str,
    reason: Option<&str>,
    limit: Duration,
) -> Result<(), String> {
    let what = format!("job {} ({}) to be {want} {reason:?}", job.id, job.name);
    wait_until(limit, &what, || {
        Ok(queue_state(&job.id)?
            .filter(|(s, r)| s == want && reason.is_none_or(|want| r == want))
            .map(drop))
    })
}

/// Cancels a job as root.
pub fn scancel(id: &str) -> Result<(), String> {
    slurm("scancel", &[id]).map(drop)
}

/// Cancels whatever the test users still have queued (leftovers of an earlier run) and waits
/// until their queue is empty, so the new jobs get the CPUs.
pub fn cancel_leftovers() -> Result<(), String> {
    for user in USERS {
        slurm("scancel", &["--user", user])?;
    }
    let users = USERS.join(",");
    wait_until(
        Duration::from_secs(60),
        "the test users' queue to empty",
        || {
            let queued = slurm("squeue", &["-h", "-u", &users, "-o", "%i"])?;
            Ok(queued.trim().is_empty().then_some(()))
        },
    )
}

/// One allocation of the mix as accounting shows it (`sacct -X -j ...`).
#[derive(Debug, Clone)]
pub struct Accounted {
    /// `JobIDRaw`.
    pub raw_id: String,
    /// `JobID` (`N_K` for array tasks).
    pub job_id: String,
    /// `JobName`.
    pub name: String,
    /// `Account`.
    pub account: String,
    /// `User`.
    pub user: String,
    /// `State`.
    pub state: String,
    /// `AllocTRES`.
    pub alloc_tres: String,
    /// `Start` (local time, or `None`/`Unknown`).
    pub start: String,
}

/// Reads the allocations of the given jobs from accounting.
pub fn accounted(jobs: &[Job]) -> Result<Vec<Accounted>, String> {
    let ids = jobs
        .iter()
        .map(|j| j.id.as_str())
        .collect::<Vec<_>>()
        .join(",");
    // TZ=UTC: `Start` is then UTC wall-clock time.
    let out = run(Command::new("sacct").env("TZ", "UTC").args([
        "-X",
        "-n",
        "-P",
        "-a",
        "--duplicates",
        "-j",
        &ids,
        "--format=JobIDRaw,JobID,JobName,Account,User,State,AllocTRES,Start",
    ]))?;
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('|').collect();
            if f.len() != 8 {
                return Err(format!("sacct -j line with {} fields: {line:?}", f.len()));
            }
            Ok(Accounted {
                raw_id: f[0].into(),
                job_id: f[1].into(),
                name: f[2].into(),
                account: f[3].into(),
                user: f[4].into(),
                state: f[5].into(),
                alloc_tres: f[6].into(),
                start: f[7].into(),
            })
        })
        .collect()
}

/// A state after which accounting will not change any more.
pub fn is_final(state: &str) -> bool {
    [
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "OUT_OF_MEMORY",
        "NODE_FAIL",
        "BOOT_FAIL",
        "DEADLINE",
        "PREEMPTED",
    ]
    .iter()
    .any(|s| state.starts_with(s))
}

/// Waits until accounting holds every allocation of `jobs` as submitted (name, user, account)
/// and in its expected outcome, and returns the rows. Accounting lags the queue (real-slurm.md
/// gotcha 4), and a row can first show up incomplete: a cancelled job was seen once named
/// `allocation` for a moment.
pub fn wait_accounted(jobs: &[Job], limit: Duration) -> Result<Vec<Accounted>, String> {
    let want: usize = jobs.iter().map(|j| j.allocations).sum();
    let mut last = Vec::new();
    let result = wait_until(
        limit,
        "accounting to hold every job as submitted, in its expected outcome",
        || {
            let rows = accounted(jobs)?;
            let done = rows.len() == want
                && rows.iter().all(|r| {
                    let job = owner(jobs, r);
                    job.is_some_and(|j| {
                        r.state.starts_with(j.outcome)
                            && (j.outcome == "RUNNING" || is_final(&r.state))
                            && (r.name.as_str(), r.user.as_str(), r.account.as_str())
                                == (j.name, j.user, j.account)
                    })
                });
            last = rows.clone();
            Ok(done.then_some(rows))
        },
    );
    result.map_err(|e| {
        format!(
            "{e}; last seen ({} of {want} allocations): {last:#?}",
            last.len()
        )
    })
}

/// The submitted job an accounting row belongs to (array tasks by their `N_K` JobID).
pub fn owner<'a>(jobs: &'a [Job], row: &Accounted) -> Option<&'a Job> {
    let base = row.job_id.split('_').next().unwrap_or_default();
    jobs.iter().find(|j| j.id == row.raw_id || j.id == base)
}
