//! The job mix: real jobs of every shape the reporting has to get right, submitted as three
//! users into the two allocations and the non-prefixed account, then waited for until
//! accounting has them all.
//!
//! | job | user | account | shape | outcome |
//! |---|---|---|---|---|
//! | two_tasks_steps | hpcuser1 | hpc_alloc2 | `-n2`, two srun steps | COMPLETED |
//! | three_steps | hpcuser3 | hpc_alloc2 | `-n2`, three srun steps | COMPLETED |
//! | gpu_job | hpcuser2 | hpc_alloc1 | `-c2 --gres=gpu:1` | COMPLETED |
//! | two_gpus | hpcuser3 | hpc_alloc2 | `--gres=gpu:2` | COMPLETED |
//! | serial_ok | hpcuser1 | hpc_alloc2 | serial | COMPLETED |
//! | array_job | hpcuser3 | hpc_alloc2 | `--array=1-3` | 3 x COMPLETED |
//! | exits_nonzero | hpcuser3 | hpc_alloc2 | `exit 3` | FAILED |
//! | other_dept_job | hpcuser2 | other_dept | not an allocation | COMPLETED, must be ignored |
//! | interactive_srun | hpcuser1 | hpc_alloc2 | plain `srun`, no sbatch | COMPLETED |
//! | still_running | hpcuser1 | hpc_alloc1 | `sleep 900` | RUNNING at report time |
//! | cancelled_pending | hpcuser3 | hpc_alloc2 | `-c2` while still_running holds a CPU | CANCELLED while PENDING |
//! | cancelled_running | hpcuser2 | hpc_alloc1 | `sleep 600`, scancel after 2 s | CANCELLED while RUNNING |
//!
//! still_running is this run's only job of (hpc_alloc1, hpcuser1), so after the other jobs ended
//! that key's usage is exactly the running job's, which the window checks rely on. (Earlier
//! runs in the same month add their jobs to every key of the month window.)

use std::thread::sleep;
use std::time::Duration;

use jiff::Timestamp;

use super::cluster::{
    Accounted, Job, Spec, cancel_leftovers, finish_srun, sbatch, scancel, spawn_srun,
    wait_accounted, wait_queue_state,
};

/// A job of the mix: name (`-J`), user, account (`-A`), further sbatch options, the script
/// and the state it must end in.
const fn job(
    name: &'static str,
    user: &'static str,
    account: &'static str,
    options: &'static [&'static str],
    script: &'static str,
    outcome: &'static str,
) -> Spec {
    Spec {
        name,
        user,
        account,
        options,
        script,
        outcome,
    }
}

/// Jobs that run to their end before the report (every one fits in 2 CPUs and 2 GPUs).
#[rustfmt::skip]
const FINISHING: &[Spec] = &[
    job("two_tasks_steps", "hpcuser1", "hpc_alloc2", &["-n2", "--mem-per-cpu=300M", "-t", "5"], "srun -n2 sleep 3; srun -n1 sleep 1", "COMPLETED"),
    job("three_steps", "hpcuser3", "hpc_alloc2", &["-n2", "--mem-per-cpu=200M", "-t", "5"], "srun -n2 sleep 1; srun -n2 sleep 1; srun -n1 true", "COMPLETED"),
    job("gpu_job", "hpcuser2", "hpc_alloc1", &["-n1", "-c2", "--mem=1G", "--gres=gpu:1", "-t", "5"], "sleep 4", "COMPLETED"),
    job("two_gpus", "hpcuser3", "hpc_alloc2", &["-n1", "--mem=256M", "--gres=gpu:2", "-t", "5"], "sleep 3", "COMPLETED"),
    job("serial_ok", "hpcuser1", "hpc_alloc2", &["-n1", "--mem=2G", "-t", "5"], "sleep 3", "COMPLETED"),
    job("array_job", "hpcuser3", "hpc_alloc2", &["--array=1-3", "-n1", "--mem=512M", "-t", "5"], "sleep 2", "COMPLETED"),
    job("exits_nonzero", "hpcuser3", "hpc_alloc2", &["-n1", "--mem=100M", "-t", "5"], "sleep 1; exit 3", "FAILED"),
    job("other_dept_job", "hpcuser2", "other_dept", &["-n1", "--mem=300M", "-t", "5"], "sleep 2", "COMPLETED"),
];

#[rustfmt::skip]
const STILL_RUNNING: Spec = job("still_running", "hpcuser1", "hpc_alloc1", &["-n1", "--mem=1536M", "-t", "10"], "sleep 900", "RUNNING");

#[rustfmt::skip]
const CANCELLED_PENDING: Spec = job("cancelled_pending", "hpcuser3", "hpc_alloc2", &["-n1", "-c2", "--mem=100M", "-t", "5"], "sleep 5", "CANCELLED");

#[rustfmt::skip]
const CANCELLED_RUNNING: Spec = job("cancelled_running", "hpcuser2", "hpc_alloc1", &["-n1", "--mem=700M", "-t", "10"], "sleep 600", "CANCELLED");

/// The mix after accounting has it all, and the instant the report is taken.
#[derive(Debug)]
pub struct Mix {
    /// The allocations of every job submitted as accounting shows them.
    pub accounted: Vec<Accounted>,
    /// The job still running at `report_at`.
    pub running: Job,
    /// When it started.
    pub running_start: Timestamp,
    /// The report instant (whole second, in the past, after every other job ended).
    pub report_at: Timestamp,
}

/// Submits the mix, waits for accounting, and fixes the report instant.
pub fn run() -> Result<Mix, String> {
    let t0 = std::time::Instant::now();
    cancel_leftovers()?;
    let srun = spawn_srun(
        "hpcuser1",
        "hpc_alloc2",
        "interactive_srun",
        &["-n1", "--mem=256M", "-t", "5"],
    )?;
    let mut jobs = FINISHING
        .iter()
        .map(sbatch)
        .collect::<Result<Vec<_>, _>>()?;
    jobs.push(Job {
        name: "interactive_srun",
        user: "hpcuser1",
        account: "hpc_alloc2",
        id: finish_srun(srun)?,
        outcome: "COMPLETED",
        allocations: 1,
    });
    wait_accounted(&jobs, Duration::from_secs(300))?;
    eprintln!("e2e: finishing jobs accounted after {:?}", t0.elapsed());

    let running = sbatch(&STILL_RUNNING)?;
    wait_queue_state(&running, "RUNNING", None, Duration::from_secs(120))?;
    // still_running holds one of the two CPUs, so a 2-CPU job has to wait for Resources.
    let pending = sbatch(&CANCELLED_PENDING)?;
    wait_queue_state(
        &pending,
        "PENDING",
        Some("Resources"),
        Duration::from_secs(60),
    )?;
    sleep(Duration::from_secs(1));
    scancel(&pending.id)?;
    let cancelled = sbatch(&CANCELLED_RUNNING)?;
    wait_queue_state(&cancelled, "RUNNING", None, Duration::from_secs(60))?;
    sleep(Duration::from_secs(2));
    scancel(&cancelled.id)?;
    jobs.extend([running.clone(), pending, cancelled]);
    let accounted = wait_accounted(&jobs, Duration::from_secs(120))?;
    eprintln!("e2e: whole mix accounted after {:?}", t0.elapsed());
    check_outcomes(&jobs, &accounted)?;

    let start = accounted
        .iter()
        .find(|r| r.raw_id == running.id)
        .map(|r| r.start.clone())
        .ok_or("still_running is not in accounting")?;
    let running_start = parse_utc(&start)?;
    // sacct's --endtime leaves out what started in the same second (real-slurm.md gotcha 5):
    // take the report instant a whole second after the last event, and only query it once it
    // is in the past.
    sleep(Duration::from_millis(1500));
    let report_at = Timestamp::from_second(Timestamp::now().as_second())
        .map_err(|e| format!("report instant: {e}"))?;
    sleep(Duration::from_millis(1100));
    Ok(Mix {
        accounted,
        running,
        running_start,
        report_at,
    })
}

/// The job cancelled while pending never got resources (the rest of each outcome is what
/// [`wait_accounted`] waited for).
fn check_outcomes(jobs: &[Job], rows: &[Accounted]) -> Result<(), String> {
    for row in rows {
        let job = super::cluster::owner(jobs, row).ok_or(format!("stray row {row:?}"))?;
        if job.name == "cancelled_pending" && !row.alloc_tres.is_empty() {
            return Err(format!("cancelled_pending got resources: {row:?}"));
        }
    }
    Ok(())
}

/// Parses sacct's `Start` (printed in UTC: [`super::cluster::accounted`] sets `TZ=UTC`).
fn parse_utc(text: &str) -> Result<Timestamp, String> {
    let civil: jiff::civil::DateTime = text
        .parse()
        .map_err(|e| format!("sacct Start {text:?}: {e}"))?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| format!("sacct Start {text:?}: {e}"))
}
