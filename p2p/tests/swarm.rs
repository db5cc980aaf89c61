//! Real swarms in one process, on loopback: a gift, a sale with change,
//! and a transfer through the relay server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use tessera_core::Amount;
use tessera_core::store::Holding;
use tessera_core::transfer::testing::World;
use tessera_core::transfer::{OfferTerms, Role};
use tessera_p2p::loopback::{transfer_over_loopback, wait_for_uri};
use tessera_p2p::relay::run_relay;
use tessera_p2p::{NodeConfig, NodeEvent, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gift_then_sale_with_change_over_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(dir.path());
    let mut a = world.peer("a");
    let mut b = world.peer("b");
    let ticket = world.ticket(&mut a, "12");
    let gift = world.ticket(&mut a, "13");
    world.notes(&mut a, &[500]);
    world.notes(&mut b, &[2000]);

    let out = transfer_over_loopback(a.wallet, b.wallet, vec![gift], OfferTerms::Gift, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(out.receiver.instrument(&gift).unwrap().holding, Holding::Held);
    assert_eq!(out.sender.instrument(&gift).unwrap().holding, Holding::Gone);

    let sale = OfferTerms::Sale(Amount::new("EUR", 1500));
    let out =
        transfer_over_loopback(out.sender, out.receiver, vec![ticket], sale, Duration::from_secs(30)).await.unwrap();
    assert_eq!(out.receiver.instrument(&ticket).unwrap().holding, Holding::Held);
    assert_eq!(out.receiver.verify(&ticket).unwrap().id, ticket);
    let eur = |w: &tessera_core::Wallet| w.balance().unwrap().iter().map(|b| b.available).sum::<u64>();
    assert_eq!((eur(&out.sender), eur(&out.receiver)), (2000, 500), "paid 2000 for 1500, got 500 back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decline_travels_back() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(dir.path());
    let mut a = world.peer("a");
    let b = world.peer("b");
    let ticket = world.ticket(&mut a, "1");
    let (na, mut ea) = spawn(a.wallet, NodeConfig::loopback()).await.unwrap();
    let (nb, mut eb) = spawn(b.wallet, NodeConfig::loopback()).await.unwrap();
    na.dial(wait_for_uri(&nb).await.unwrap()).await.unwrap();
    let exchange = na.offer(nb.peer_id(), vec![ticket], OfferTerms::Gift, 600).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match eb.next_event().await.unwrap() {
                NodeEvent::OfferReceived { offer, .. } => {
                    assert_eq!(offer.items[0].id, ticket);
                    nb.decline(offer.offer_id, "not tonight").await.unwrap();
                }
                NodeEvent::Declined { .. } => break,
                _ => {}
            }
        }
        loop {
            if let NodeEvent::Declined { exchange: e, role: Role::Sender, reason } = ea.next_event().await.unwrap() {
                assert_eq!((e, reason.as_str()), (exchange, "not tonight"));
                break;
            }
        }
    })
    .await
    .unwrap();
    let holding = na.with_wallet(move |w| w.instrument(&ticket).unwrap().holding).await.unwrap();
    assert_eq!(holding, Holding::Held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gift_through_the_relay_server() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(dir.path());
    let mut a = world.peer("a");
    let b = world.peer("b");
    let ticket = world.ticket(&mut a, "7");
    let relay =
        run_relay(libp2p::identity::Keypair::generate_ed25519(), vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()], vec![])
            .await
            .unwrap();
    // B is reachable only through the relay: no direct listener.
    let b_config = NodeConfig { listen: vec![], relay: Some(relay.addresses[0].clone()), ..NodeConfig::loopback() };
    let (nb, mut eb) = spawn(b.wallet, b_config).await.unwrap();
    let (na, mut ea) = spawn(a.wallet, NodeConfig::loopback()).await.unwrap();
    let b_uri = wait_for_uri(&nb).await.unwrap();
    assert!(b_uri.to_string().contains("p2p-circuit"), "{b_uri}");
    na.dial(b_uri.to_string().parse().unwrap()).await.unwrap();
    let exchange = na.offer(nb.peer_id(), vec![ticket], OfferTerms::Gift, 600).await.unwrap();
    let mut relayed = false;
    tokio::time::timeout(Duration::from_secs(30), async {
        let (mut a_done, mut b_done) = (false, false);
        while !(a_done && b_done) {
            tokio::select! {
                Some(e) = ea.next_event() => match e {
                    NodeEvent::Connected { peer, relayed: r } if peer == nb.peer_id() => relayed |= r,
                    NodeEvent::Completed { exchange: x, .. } if x == exchange => a_done = true,
                    _ => {}
                },
                Some(e) = eb.next_event() => match e {
                    NodeEvent::OfferReceived { offer, .. } => nb.accept(offer.offer_id).await.unwrap(),
                    NodeEvent::Completed { .. } => b_done = true,
                    _ => {}
                },
            }
        }
    })
    .await
    .expect("the relayed gift completes");
    assert!(relayed, "A reached B through a relay circuit");
    assert!(relay.circuits() >= 1 && relay.reservations() >= 1);
    let holding = nb.with_wallet(move |w| w.instrument(&ticket).unwrap().holding).await.unwrap();
    assert_eq!(holding, Holding::Held);
    relay.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_only_and_tcp_only() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(dir.path());
    let mut a = world.peer("a");
    let b = world.peer("b");
    let first = world.ticket(&mut a, "20");
    let second = world.ticket(&mut a, "21");
    let (mut sender, mut receiver) = (a.wallet, b.wallet);
    for (ticket, listen) in [(first, "/ip4/127.0.0.1/udp/0/quic-v1"), (second, "/ip4/127.0.0.1/tcp/0")] {
        let config = NodeConfig { listen: vec![listen.parse().unwrap()], ..NodeConfig::loopback() };
        let out = tessera_p2p::loopback::transfer_with(
            sender,
            receiver,
            vec![ticket],
            OfferTerms::Gift,
            Duration::from_secs(30),
            config,
        )
        .await
        .unwrap_or_else(|e| panic!("over {listen}: {e}"));
        assert_eq!(out.receiver.instrument(&ticket).unwrap().holding, Holding::Held);
        (sender, receiver) = (out.sender, out.receiver);
    }
}

/// The sender's node stops after its offer was answered but before the
/// acceptance reached it; restarted on its wallet file with the same
/// identity, it resends the offer to the remembered peer, gets the stored
/// acceptance again, and the exchange completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_resumes_its_exchanges() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(dir.path());
    let mut a = world.peer("a");
    let b = world.peer("b");
    let ticket = world.ticket(&mut a, "30");
    let identity = libp2p::identity::Keypair::generate_ed25519();
    // The node takes the wallet; a scratch wallet stands in until the reopen.
    let a_wallet = std::mem::replace(&mut a.wallet, world.peer("scratch").wallet);
    let (na, _ea) = tessera_p2p::spawn_with_identity(a_wallet, NodeConfig::loopback(), identity.clone()).await.unwrap();
    let (nb, mut eb) = spawn(b.wallet, NodeConfig::loopback()).await.unwrap();
    let b_uri = wait_for_uri(&nb).await.unwrap();
    na.dial(b_uri.clone()).await.unwrap();
    let exchange = na.offer(nb.peer_id(), vec![ticket], OfferTerms::Gift, 600).await.unwrap();
    // B's user takes their time; A's node goes away meanwhile.
    let offer_seen = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let NodeEvent::OfferReceived { offer, .. } = eb.next_event().await.unwrap() {
                return offer.offer_id;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(offer_seen, exchange);
    let a_wallet = na.stop().await.unwrap();
    drop(a_wallet);
    nb.accept(exchange).await.unwrap();
    // A comes back from its file with the same network identity.
    a.reopen();
    let a_wallet = std::mem::replace(&mut a.wallet, world.peer("scratch2").wallet);
    let (na, mut ea) = tessera_p2p::spawn_with_identity(a_wallet, NodeConfig::loopback(), identity).await.unwrap();
    na.dial(b_uri).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let NodeEvent::Completed { exchange: e, role: Role::Sender, .. } = ea.next_event().await.unwrap() {
                assert_eq!(e, exchange);
                break;
            }
        }
    })
    .await
    .expect("the restarted sender completes");
    let holding = nb.with_wallet(move |w| w.instrument(&ticket).unwrap().holding).await.unwrap();
    assert_eq!(holding, Holding::Held);
}
