#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The offline event at CI size (`gate/examples/offline_event`, issue 7
//! item 6): 10 real gates, real wallets, the real registry on SQLite, a few
//! hundred entries with every kind of cheat, partitions that heal. The full
//! run (50,000 entries) is the example; its figures are in docs/security.md.

#[path = "../examples/offline_event/sim.rs"]
mod sim;

#[test]
fn an_offline_event_with_partitions_and_cheats_reconciles_with_every_cheat_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = sim::Config::event(200, dir.path().to_path_buf());
    // Enough of every cheat at this size to meet each case, half of them
    // while the mesh is split (so some get in twice, on opposite sides).
    config.cloned = 60;
    config.double_transferred = 60;
    config.stale = 60;
    config.split_cheats = 500;
    config.over_limit = 20;
    let report = sim::run(&config).unwrap();
    eprintln!("{}", sim::table(&config, &report));
    for kind in ["cloned phone (same ticket at two gates)", "double transfer", "stale copy presented after selling"] {
        assert!(report.cheats.get(kind).copied().unwrap_or(0) >= 3, "too few cheats of kind {kind}: {report:?}");
    }
    assert_eq!(report.double_entries_connected, 0, "a gate admitted a ticket its part of the mesh knew was used");
    assert_eq!(report.honest_untouched_refused, 0, "an honest holder of an untouched ticket was refused");
    assert_eq!(report.wrongly_named, 0, "a proof named a key that did not cheat");
    assert_eq!(report.double_transfers_unproven, 0, "a double transfer went unproven");
    assert_eq!(report.stale_unproven, 0, "a stale copy admitted after its sale went unproven");
    assert_eq!(report.stale_unflagged_by_registry, 0, "the registry did not act on a used-after-transfer proof");
    assert!(report.used_after_transfer > 0, "no stale copy got in first: the case was not met");
    assert!(report.double_entries_across > 0, "no partition let a cheat through: the partitions were not met");
    assert!(report.mesh_double_entries > 0, "the heals reported no double entry");
    assert!(report.honest_refused.get("over-offline-limit").copied().unwrap_or(0) > 0, "the hop limit was not met");
    assert_eq!(report.value_at_risk(), (report.double_entries_across as u64) * sim::FACE_PRICE);
    assert!(report.registry_refused.is_empty(), "the registry refused a record: {:?}", report.registry_refused);
}
