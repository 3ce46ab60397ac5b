//! Events out: the notes a pass (or a cleanup) decided on, published through the recorder, which
//! folds repeats into a series.

use kube::{Resource, runtime::events::EventType};
use tracing::warn;

use crate::{api::BatonConnector, controller::context::Context, decide::events::Note};

pub async fn publish(ctx: &Context, bc: &BatonConnector, notes: Vec<Note>) {
    let reference = bc.object_ref(&());
    for note in notes {
        let level = if note.warning { EventType::Warning } else { EventType::Normal };
        let event = kube::runtime::events::Event {
            type_: level,
            reason: note.reason.into(),
            note: Some(note.message),
            action: note.action.into(),
            secondary: None,
        };
        // An event that cannot be written must not fail the reconcile that already did the work.
        if let Err(e) = ctx.recorder.publish(&event, &reference).await {
            warn!(error = %e, reason = note.reason, "could not publish event");
        }
    }
}
