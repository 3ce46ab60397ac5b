//! Events out: the notes a pass (or a cleanup) decided on, published through the recorder, which
//! folds repeats into a series.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{Resource, runtime::events::EventType};
use tracing::warn;

use crate::{api::BatonConnector, controller::context::Context, decide::events::Note};

pub async fn publish(ctx: &Context, bc: &BatonConnector, notes: Vec<Note>) {
    let reference = bc.object_ref(&());
    for note in notes {
        publish_about(ctx, &reference, note).await;
    }
}

/// One note as an event about `regarding` (a BatonConnector, or a tenant).
pub async fn publish_about(ctx: &Context, regarding: &ObjectReference, note: Note) {
    let reason = note.reason;
    let event = kube::runtime::events::Event {
        type_: if note.warning { EventType::Warning } else { EventType::Normal },
        reason: reason.into(),
        note: Some(note.message),
        action: note.action.into(),
        secondary: None,
    };
    // An event that cannot be written must not fail the reconcile that already did the work.
    if let Err(e) = ctx.recorder.publish(&event, regarding).await {
        warn!(error = %e, reason, "could not publish event");
    }
}
