//! Pieces of the stand-in kubelet and the stand-in connector it runs (issue #16 items 3 and 4).
//! So far: how the kubelet resolves a container's environment (`env`), the Baton SDK contract the
//! stand-in connector follows (`sdk`), and what it writes in one-shot mode (`standin`). Executing
//! containers is not wired in yet: every pod is still simulated by `cluster::spawn_kubelet`.

pub mod env;
pub mod sdk;
pub mod standin;
