//! An in-memory stand-in for the Kubernetes API server's HTTP layer, for controller tests. It keeps
//! objects by path, answers GET/PATCH(apply)/POST like the server does for the calls the operator
//! makes, and records every request so tests can assert request by request.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use http::{Request, Response, StatusCode};
use kube::{Client, client::Body};
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
}

impl Call {
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    calls: Vec<Call>,
    next_uid: u64,
    /// Writes left before every further write fails (a crash of the operator right there).
    writes_before_failure: Option<usize>,
}

/// The fake server. Cloning shares the state.
#[derive(Clone, Default)]
pub struct FakeKube {
    state: Arc<Mutex<State>>,
}

impl FakeKube {
    /// A client whose every request is answered by this fake.
    pub fn client(&self) -> Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let this = self.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                send.send_response(this.answer(&parts, &bytes));
            }
        });
        Client::new(service, "default")
    }

    pub fn put(&self, path: &str, object: Value) {
        let mut object = object;
        let mut s = self.state.lock().unwrap();
        s.next_uid += 1;
        let uid = s.next_uid;
        let meta = &mut object["metadata"];
        if meta.get("uid").is_none() {
            meta["uid"] = json!(format!("uid-{uid}"));
        }
        if meta.get("generation").is_none() {
            meta["generation"] = json!(1);
        }
        if meta.get("creationTimestamp").is_none() {
            meta["creationTimestamp"] = json!(k8s_openapi::jiff::Timestamp::now().to_string());
        }
        meta["resourceVersion"] = json!(uid.to_string());
        s.objects.insert(path.to_string(), object);
    }

    /// Every object directly under a collection path, as a watch's first list would deliver them.
    pub fn list_under(&self, path: &str) -> Vec<Value> {
        let s = self.state.lock().unwrap();
        s.objects
            .iter()
            .filter(|(k, _)| k.rsplit_once('/').is_some_and(|(dir, _)| dir == path))
            .map(|(_, o)| o.clone())
            .collect()
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.state.lock().unwrap().objects.get(path).cloned()
    }

    /// Removes an object, as someone deleting it would.
    pub fn delete(&self, path: &str) {
        self.state.lock().unwrap().objects.remove(path);
    }

    pub fn edit(&self, path: &str, f: impl FnOnce(&mut Value)) {
        let mut s = self.state.lock().unwrap();
        s.next_uid += 1;
        let rv = s.next_uid.to_string();
        let object = s.objects.get_mut(path).expect("object to edit exists");
        f(object);
        object["metadata"]["resourceVersion"] = json!(rv);
    }

    /// Plays the Deployment controller and kubelet: the Deployment's current template has one
    /// available pod. Does nothing when the Deployment does not exist.
    pub fn make_available(&self, deployment: &str) {
        if self.get(deployment).is_none() {
            return;
        }
        self.edit(deployment, |d| {
            let generation = d["metadata"]["generation"].clone();
            d["status"] = json!({
                "observedGeneration": generation, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1,
                "availableReplicas": 1, "conditions": [{"type": "Available", "status": "True"}],
            });
        });
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// From the `n`-th write on (0 = the next one), writes fail with 500 and change nothing, as if
    /// the operator had died just before making them.
    pub fn fail_writes_from(&self, n: usize) {
        self.state.lock().unwrap().writes_before_failure = Some(n);
    }

    pub fn heal(&self) {
        self.state.lock().unwrap().writes_before_failure = None;
    }

    /// Forgets the recorded calls, to look at the next reconcile alone.
    pub fn clear_calls(&self) {
        self.state.lock().unwrap().calls.clear();
    }

    pub fn writes(&self) -> Vec<Call> {
        self.calls().into_iter().filter(Call::is_write).collect()
    }

    fn answer(&self, parts: &http::request::Parts, body: &[u8]) -> Response<Body> {
        let path = parts.uri.path().to_string();
        let query = parts.uri.query().unwrap_or_default().to_string();
        let method = parts.method.as_str().to_string();
        let text = String::from_utf8_lossy(body).to_string();
        let is_event = path.contains("/events");
        {
            let mut s = self.state.lock().unwrap();
            s.calls.push(Call { method: method.clone(), path: path.clone(), query, body: text });
            if method != "GET" && !is_event {
                match s.writes_before_failure {
                    Some(0) => {
                        return respond(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            json!({"kind": "Status", "code": 500, "message": "injected failure"}),
                        );
                    }
                    Some(n) => s.writes_before_failure = Some(n - 1),
                    None => {}
                }
            }
        }
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        match method.as_str() {
            "GET" => match self.get(&path) {
                Some(o) => respond(StatusCode::OK, o),
                // The real server lists an empty collection as empty; pods are listed before any
                // test has made one.
                None if self.is_collection(&path) || path.ends_with("/pods") => {
                    respond(StatusCode::OK, self.list(&path, parts.uri.query()))
                }
                None => not_found(&path),
            },
            // A JSON patch is a list of operations; every other patch the operator sends is an object.
            "PATCH" if body.is_array() => self.json_patch(&path, body),
            "PATCH" => self.apply(&path, body),
            "POST" if is_event => respond(StatusCode::CREATED, body),
            "POST" => {
                let target = format!("{path}/{}", body["metadata"]["name"].as_str().unwrap_or_default());
                if self.get(&target).is_some() {
                    return respond(
                        StatusCode::CONFLICT,
                        json!({"kind": "Status", "code": 409, "reason": "AlreadyExists", "message": "exists"}),
                    );
                }
                self.put(&target, body);
                respond(StatusCode::CREATED, self.get(&target).unwrap())
            }
            "DELETE" => match self.state.lock().unwrap().objects.remove(&path) {
                Some(o) => respond(StatusCode::OK, o),
                None => not_found(&path),
            },
            _ => respond(StatusCode::METHOD_NOT_ALLOWED, json!({})),
        }
    }

    fn is_collection(&self, path: &str) -> bool {
        // `.../namespaces/<ns>/<plural>` is a collection even while it is empty, as on a real API
        // server (a OneShot pass lists Jobs before there are any).
        let namespaced_plural =
            path.rsplit_once("/namespaces/").is_some_and(|(_, rest)| rest.split('/').count() == 2);
        namespaced_plural
            || self
                .state
                .lock()
                .unwrap()
                .objects
                .keys()
                .any(|k| k.rsplit_once('/').is_some_and(|(dir, _)| dir == path))
    }

    /// A list of the objects directly under `path`, filtered by a `labelSelector` of `key=value` and
    /// `key` terms.
    fn list(&self, path: &str, query: Option<&str>) -> Value {
        let selector: Vec<(String, Option<String>)> = query
            .unwrap_or_default()
            .split('&')
            .filter_map(|kv| kv.strip_prefix("labelSelector="))
            .flat_map(|sel| {
                let sel = sel.replace("%3D", "=").replace("%2C", ",").replace("%2F", "/");
                sel.split(',')
                    .map(|term| match term.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (term.to_string(), None),
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let items: Vec<Value> = self
            .state
            .lock()
            .unwrap()
            .objects
            .iter()
            .filter(|(k, _)| k.rsplit_once('/').is_some_and(|(dir, _)| dir == path))
            .map(|(_, o)| o.clone())
            .filter(|o| {
                selector.iter().all(|(k, v)| match v {
                    Some(v) => o["metadata"]["labels"][k] == json!(v),
                    None => !o["metadata"]["labels"][k].is_null(),
                })
            })
            .collect();
        json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items})
    }

    /// An RFC 6902 JSON patch on the object (a `/status` suffix patches the same object, as the
    /// status subresource does).
    fn json_patch(&self, path: &str, ops: Value) -> Response<Body> {
        let base = path.strip_suffix("/status").unwrap_or(path);
        let Some(mut object) = self.get(base) else { return not_found(base) };
        let patch: json_patch::Patch = match serde_json::from_value(ops) {
            Ok(p) => p,
            Err(e) => {
                return respond(StatusCode::BAD_REQUEST, json!({"code": 400, "message": e.to_string()}));
            }
        };
        if let Err(e) = json_patch::patch(&mut object, &patch) {
            return respond(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"kind": "Status", "code": 422, "message": e.to_string()}),
            );
        }
        self.put_keep(base, object.clone());
        respond(StatusCode::OK, self.get(base).unwrap())
    }

    /// A server-side apply, simplified: the applied fields replace the live ones; a spec change bumps
    /// the generation as the real server does.
    fn apply(&self, path: &str, patch: Value) -> Response<Body> {
        if let Some(base) = path.strip_suffix("/status") {
            let Some(mut object) = self.get(base) else {
                return not_found(base);
            };
            object["status"] = patch["status"].clone();
            self.put_keep(base, object.clone());
            return respond(StatusCode::OK, object);
        }
        match self.get(path) {
            None => {
                self.put(path, patch);
                respond(StatusCode::CREATED, self.get(path).unwrap())
            }
            Some(mut live) => {
                let spec_changed = live["spec"] != patch["spec"];
                for key in ["labels", "annotations", "ownerReferences"] {
                    if !patch["metadata"][key].is_null() {
                        live["metadata"][key] = patch["metadata"][key].clone();
                    }
                }
                live["spec"] = patch["spec"].clone();
                if spec_changed {
                    let generation = live["metadata"]["generation"].as_i64().unwrap_or(1);
                    live["metadata"]["generation"] = json!(generation + 1);
                }
                self.put_keep(path, live.clone());
                respond(StatusCode::OK, self.get(path).unwrap())
            }
        }
    }

    fn put_keep(&self, path: &str, object: Value) {
        let mut s = self.state.lock().unwrap();
        s.next_uid += 1;
        let mut object = object;
        object["metadata"]["resourceVersion"] = json!(s.next_uid.to_string());
        s.objects.insert(path.to_string(), object);
    }
}

/// Secret data as the API server stores it.
pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn respond(code: StatusCode, body: Value) -> Response<Body> {
    Response::builder().status(code).body(Body::from(serde_json::to_vec(&body).unwrap())).unwrap()
}

fn not_found(path: &str) -> Response<Body> {
    respond(
        StatusCode::NOT_FOUND,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
               "message": format!("{path} not found")}),
    )
}
