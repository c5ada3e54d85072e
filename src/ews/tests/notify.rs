//! Pull and streaming notifications fed by the change feed.

use std::time::{Duration, Instant};

use super::*;
use crate::net::http::HttpBody;
use crate::store::FolderKind;

const SUBSCRIBE_PULL: &str = r#"<m:Subscribe><m:PullSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="inbox"/></t:FolderIds><t:EventTypes><t:EventType>NewMailEvent</t:EventType><t:EventType>ModifiedEvent</t:EventType><t:EventType>DeletedEvent</t:EventType></t:EventTypes><t:Timeout>10</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>"#;
const SUBSCRIBE_STREAMING: &str = r#"<m:Subscribe><m:StreamingSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="inbox"/></t:FolderIds><t:EventTypes><t:EventType>NewMailEvent</t:EventType></t:EventTypes></m:StreamingSubscriptionRequest></m:Subscribe>"#;

fn events(root: &Element) -> Vec<String> {
    let n = messages(root, "GetEvents")[0]
        .child("Notification")
        .unwrap();
    n.children
        .iter()
        .filter(|c| c.name.ends_with("Event"))
        .map(|c| c.name.clone())
        .collect()
}

#[tokio::test]
async fn pull_subscription_reports_delivery_flags_and_expunge() {
    let f = Fixture::new().await;
    deliver(&f, FolderKind::Inbox, &mail("before", "c@x.test"), 1, &[]).await;
    let root = f.call(SUBSCRIBE_PULL).await;
    let msg = &messages(&root, "Subscribe")[0];
    let id = msg.child_text("SubscriptionId").unwrap().to_string();
    assert!(msg.child_text("Watermark").is_some());
    let get = format!(
        "<m:GetEvents><m:SubscriptionId>{id}</m:SubscriptionId><m:Watermark></m:Watermark></m:GetEvents>"
    );
    assert_eq!(
        events(&f.call(&get).await),
        ["StatusEvent"],
        "nothing since subscribing"
    );

    deliver(&f, FolderKind::Inbox, &mail("new", "c@x.test"), 2, &[]).await;
    deliver(
        &f,
        FolderKind::Archive,
        &mail("elsewhere", "c@x.test"),
        2,
        &[],
    )
    .await;
    let store = &f.world.store;
    let inbox = f.folder(FolderKind::Inbox).await;
    store
        .store_flags(
            inbox.id,
            vec![2],
            crate::store::FlagOp::Add,
            vec!["\\Seen".into()],
            None,
        )
        .await
        .unwrap();
    store.expunge(inbox.id, vec![1]).await.unwrap();
    let root = f.call(&get).await;
    assert_eq!(
        events(&root),
        ["NewMailEvent", "ModifiedEvent", "DeletedEvent"]
    );
    let n = messages(&root, "GetEvents")[0]
        .child("Notification")
        .unwrap();
    assert!(n.path(&["NewMailEvent", "ItemId"]).is_some());
    assert_eq!(
        events(&f.call(&get).await),
        ["StatusEvent"],
        "the watermark moved on"
    );

    // Someone else cannot read it; after Unsubscribe nobody can.
    let bob = basic("bob@acme.test", PASSWORD);
    let root = f.call_as(&bob, "", &get).await;
    assert_eq!(codes(&root, "GetEvents"), ["ErrorSubscriptionNotFound"]);
    let unsub = format!("<m:Unsubscribe><m:SubscriptionId>{id}</m:SubscriptionId></m:Unsubscribe>");
    assert_eq!(codes(&f.call(&unsub).await, "Unsubscribe"), ["NoError"]);
    assert_eq!(
        codes(&f.call(&get).await, "GetEvents"),
        ["ErrorSubscriptionNotFound"]
    );

    let push = r#"<m:Subscribe><m:PushSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="inbox"/></t:FolderIds><t:EventTypes><t:EventType>NewMailEvent</t:EventType></t:EventTypes><t:StatusFrequency>1</t:StatusFrequency><t:URL>http://127.0.0.1:1/</t:URL></m:PushSubscriptionRequest></m:Subscribe>"#;
    assert_eq!(
        codes(&f.call(push).await, "Subscribe"),
        ["ErrorInvalidSubscriptionRequest"]
    );
}

/// The next chunk of a stream as text, within `within`.
async fn next_chunk(
    rx: &mut tokio::sync::mpsc::Receiver<bytes::Bytes>,
    within: Duration,
) -> String {
    let chunk = tokio::time::timeout(within, rx.recv())
        .await
        .expect("a chunk in time")
        .expect("stream open");
    String::from_utf8(chunk.to_vec()).unwrap()
}

#[tokio::test]
async fn streaming_delivers_events_within_100ms_and_closes_when_access_ends() {
    let f = Fixture::new().await;
    deliver(&f, FolderKind::Inbox, &mail("warm", "c@x.test"), 1, &[]).await;
    let root = f.call(SUBSCRIBE_STREAMING).await;
    let id = messages(&root, "Subscribe")[0]
        .child_text("SubscriptionId")
        .unwrap()
        .to_string();
    let stream = format!(
        "<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>{id}</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>"
    );
    let auth = basic("alice@acme.test", PASSWORD);
    let r = f.respond(Some(&auth), &envelope("", &stream)).await;
    let HttpBody::Stream(mut rx) = r.body else {
        panic!("not a stream")
    };
    let first = next_chunk(&mut rx, Duration::from_secs(2)).await;
    assert!(
        first.starts_with("<?xml") && first.contains("<m:ConnectionStatus>OK</m:ConnectionStatus>"),
        "{first}"
    );

    let mut took = Vec::new();
    for n in 0..3 {
        let started = Instant::now();
        deliver(
            &f,
            FolderKind::Inbox,
            &mail(&format!("live {n}"), "c@x.test"),
            2,
            &[],
        )
        .await;
        let chunk = next_chunk(&mut rx, Duration::from_secs(2)).await;
        took.push(started.elapsed());
        assert!(!chunk.starts_with("<?xml"), "one declaration per response");
        let env = parse(chunk.as_bytes()).expect("each chunk is a whole envelope");
        let n = env
            .path(&[
                "Body",
                "GetStreamingEventsResponse",
                "ResponseMessages",
                "GetStreamingEventsResponseMessage",
                "Notifications",
                "Notification",
            ])
            .unwrap();
        assert!(n.child("NewMailEvent").is_some(), "{chunk}");
    }
    took.sort();
    assert!(took[1] < Duration::from_millis(100), "median {:?}", took[1]);

    // A changed password ends the stream with Closed.
    let (d, org, alice) = (
        f.world.directory.clone(),
        f.world.org.clone(),
        f.world.alice.clone(),
    );
    blocking(move || d.reset_password(&org, &alice, "An0ther-Horse!").unwrap()).await;
    let last = next_chunk(&mut rx, Duration::from_secs(3)).await;
    assert!(
        last.contains("<m:ConnectionStatus>Closed</m:ConnectionStatus>"),
        "{last}"
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .unwrap()
            .is_none(),
        "then the body ends"
    );
}

/// A watermark older than what the store kept of the feed cannot be continued
/// from: Subscribe and GetEvents answer ErrorInvalidWatermark instead of
/// skipping the lost events.
#[tokio::test]
async fn a_watermark_older_than_the_kept_feed_is_invalid() {
    use crate::ews::subscriptions::watermark;
    let f = Fixture::new().await;
    for i in 0..4 {
        deliver(
            &f,
            FolderKind::Inbox,
            &mail(&format!("w{i}"), "c@x.test"),
            i,
            &[],
        )
        .await;
    }
    let inbox = f.folder(FolderKind::Inbox).await;
    let store = &f.world.store;
    let oldest = store.changes_since(&inbox.mailbox_id, 0, 1).await.unwrap()[0].seq;
    let later = crate::clock::now_ms() + 3_600_000;
    assert!(
        store
            .prune_feed(&inbox.mailbox_id, later, 1, 100)
            .await
            .unwrap()
            > 0
    );
    let old = watermark(oldest);
    let with_old = SUBSCRIBE_PULL.replace(
        "<t:Timeout>",
        &format!("<t:Watermark>{old}</t:Watermark><t:Timeout>"),
    );
    assert_eq!(
        codes(&f.call(&with_old).await, "Subscribe"),
        ["ErrorInvalidWatermark"]
    );
    let root = f.call(SUBSCRIBE_PULL).await;
    let id = messages(&root, "Subscribe")[0]
        .child_text("SubscriptionId")
        .unwrap()
        .to_string();
    let get = |w: &str| {
        format!(
            "<m:GetEvents><m:SubscriptionId>{id}</m:SubscriptionId><m:Watermark>{w}</m:Watermark></m:GetEvents>"
        )
    };
    assert_eq!(
        codes(&f.call(&get(&old)).await, "GetEvents"),
        ["ErrorInvalidWatermark"]
    );
    assert_eq!(events(&f.call(&get("")).await), ["StatusEvent"]);
}
