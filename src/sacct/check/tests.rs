//! Unit tests of `--check`: TRES from sacctmgr, pings as SLURM prints them, the account query.

use super::run::{account_query, tres_finding};
use super::{Ping, accounted_tres, read_scontrol_ping, read_slurmdbd_ping};

#[test]
fn tres_are_read_from_sacctmgr_and_missing_ones_named() {
    let out = "cpu|\nmem|\nenergy|\nnode|\nbilling|\nfs|disk\nvmem|\npages|\ngres|gpu\n";
    let accounted = accounted_tres(out);
    assert_eq!(
        accounted,
        [
            "cpu", "mem", "energy", "node", "billing", "fs/disk", "vmem", "pages", "gres/gpu"
        ]
    );
    let ok = tres_finding(&["cpu".into(), "gres/gpu".into()], &accounted);
    assert!(ok.ok);
    let bad = tres_finding(&["cpu".into(), "gres/gpu:a100".into()], &accounted);
    assert!(!bad.ok);
    assert_eq!(bad.code, 78);
    assert!(
        bad.detail
            .starts_with("SLURM does not account gres/gpu:a100, which the components read"),
        "{}",
        bad.detail
    );
}

#[test]
fn pings_are_read_from_what_slurm_22_05_prints() {
    assert_eq!(
        read_scontrol_ping("Slurmctld(primary) at vm is UP\n"),
        Ping::Up("Slurmctld(primary) at vm is UP".into())
    );
    assert_eq!(
        read_scontrol_ping("Slurmctld(primary) at vm is DOWN\n"),
        Ping::Down("Slurmctld(primary) at vm is DOWN".into())
    );
    assert!(matches!(read_scontrol_ping(""), Ping::Unknown(_)));
    // slurmdbd stopped: what `sacctmgr list cluster` writes to stderr on 22.05.
    let refused = "sacctmgr: error: slurm_persist_conn_open_without_init: failed to open \
                       persistent connection to host:localhost:6819: Connection refused\n\
                       sacctmgr: error: Sending PersistInit msg: Connection refused\n";
    assert_eq!(
        read_slurmdbd_ping(Err(refused)),
        Ping::Down(
            "sacctmgr: error: slurm_persist_conn_open_without_init: failed to open \
                 persistent connection to host:localhost:6819: Connection refused"
                .into()
        )
    );
    assert_eq!(read_slurmdbd_ping(Ok("ci\n")), Ping::Up("ci".into()));
    assert!(matches!(
        read_slurmdbd_ping(Err("sacctmgr: error: Munge decode failed")),
        Ping::Unknown(_)
    ));
}

#[test]
fn a_cluster_filter_asks_for_associations_so_sacctmgr_never_prompts() {
    assert_eq!(
        account_query(Some("ci")),
        [
            "list",
            "account",
            "withassoc",
            "cluster=ci",
            "format=account"
        ]
    );
    assert_eq!(account_query(None), ["list", "account", "format=account"]);
}
