//! A pod's volumes as directories: an `emptyDir` is a fresh directory of the pod's (writable by
//! anyone, as the kubelet makes it), a `secret` or `configMap` a directory with one file per key
//! (mode 0644, or the volume's `defaultMode`), a `persistentVolumeClaim` the claim's directory,
//! which outlives the pod so that the suite can read what a run left there. Any other kind is an
//! empty directory.

use std::{
    collections::BTreeMap,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    time::Duration,
};

use k8s_openapi::api::core::v1::{KeyToPath, Volume, VolumeMount};

use super::{isolate::Mount, pod::PodCtx, runtime::Snapshot};

/// Each volume's directory, by name.
pub type Volumes = BTreeMap<String, PathBuf>;

/// Makes the pod's volumes, waiting (`ContainerCreating`) while a Secret or ConfigMap they need is
/// missing; `None` if the pod is deleted meanwhile.
pub async fn prepare(ctx: &PodCtx) -> Option<Volumes> {
    loop {
        let made = match Snapshot::read(&ctx.rt.client, &ctx.namespace()).await {
            Ok(objects) => make_all(ctx, &objects),
            Err(e) => Err(format!("reading the pod's Secrets and ConfigMaps: {e}")),
        };
        match made {
            Ok(volumes) => return Some(volumes),
            Err(message) => ctx.update(|s| {
                for c in s.init.iter_mut().chain(s.main.iter_mut()) {
                    c.wait("ContainerCreating", message.clone());
                }
            }),
        }
        if !ctx.sleep(Duration::from_secs(2)).await {
            return None;
        }
    }
}

fn make_all(ctx: &PodCtx, objects: &Snapshot) -> Result<Volumes, String> {
    let mut out = Volumes::new();
    for v in ctx.spec().volumes.iter().flatten() {
        let dir = make(ctx, v, objects)?;
        out.insert(v.name.clone(), dir);
    }
    Ok(out)
}

fn make(ctx: &PodCtx, v: &Volume, objects: &Snapshot) -> Result<PathBuf, String> {
    let io = |e: std::io::Error| format!("MountVolume.SetUp failed for volume \"{}\" : {e}", v.name);
    if let Some(claim) = &v.persistent_volume_claim {
        let dir = ctx.rt.claim_dir(&ctx.namespace(), &claim.claim_name);
        open_dir(&dir).map_err(io)?;
        return Ok(dir);
    }
    let dir = ctx.dir.join("volumes").join(&v.name);
    open_dir(&dir).map_err(io)?;
    let source = if let Some(s) = &v.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        Some((
            "secret",
            name.clone(),
            objects.secrets.get(&name),
            s.optional,
            s.items.clone(),
            s.default_mode,
        ))
    } else if let Some(c) = &v.config_map {
        let name = c.name.clone();
        Some((
            "configmap",
            name.clone(),
            objects.config_maps.get(&name),
            c.optional,
            c.items.clone(),
            c.default_mode,
        ))
    } else {
        None
    };
    let Some((kind, name, data, optional, items, mode)) = source else { return Ok(dir) };
    let Some(data) = data else {
        if optional == Some(true) {
            return Ok(dir);
        }
        return Err(format!(
            "MountVolume.SetUp failed for volume \"{}\" : {kind} \"{name}\" not found",
            v.name
        ));
    };
    write_files(&dir, data, items.as_deref(), mode.unwrap_or(0o644)).map_err(io)?;
    Ok(dir)
}

fn open_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
}

fn write_files(
    dir: &Path,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    mode: i32,
) -> std::io::Result<()> {
    let files: Vec<(String, &Vec<u8>, i32)> = match items {
        Some(items) => items
            .iter()
            .filter_map(|i| Some((i.path.clone(), data.get(&i.key)?, i.mode.unwrap_or(mode))))
            .collect(),
        None => data.iter().map(|(k, v)| (k.clone(), v, mode)).collect(),
    };
    for (path, content, mode) in files {
        let file = dir.join(&path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&file, content)?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode as u32))?;
    }
    Ok(())
}

/// A container's mounts of the pod's volumes (a `subPath` is made inside its volume first).
pub fn mounts(volumes: &Volumes, mounts: &[VolumeMount]) -> Result<Vec<Mount>, String> {
    let mut out = Vec::new();
    for m in mounts {
        let Some(dir) = volumes.get(&m.name) else {
            return Err(format!("cannot find volume \"{}\" to mount into container", m.name));
        };
        let source = match m.sub_path.as_deref().filter(|p| !p.is_empty()) {
            Some(sub) => {
                let path = dir.join(sub);
                open_dir(&path).map_err(|e| {
                    format!("failed to create subPath directory for volumeMount \"{}\": {e}", m.name)
                })?;
                path
            }
            None => dir.clone(),
        };
        out.push(Mount { source, target: m.mount_path.clone(), read_only: m.read_only == Some(true) });
    }
    // A mount inside another one is made after it.
    out.sort_by_key(|m| m.target.matches('/').count());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_paths_are_made_and_mounts_nest_in_order() {
        let root = tempfile::tempdir().unwrap();
        let volumes = Volumes::from([("work".to_string(), root.path().to_path_buf())]);
        let m = |path: &str, sub: Option<&str>| VolumeMount {
            name: "work".into(),
            mount_path: path.into(),
            sub_path: sub.map(Into::into),
            ..Default::default()
        };
        let out = mounts(&volumes, &[m("/work/inner/x", None), m("/tmp", Some("tmp"))]).unwrap();
        assert_eq!(out[0].target, "/tmp");
        assert_eq!(out[0].source, root.path().join("tmp"));
        assert!(root.path().join("tmp").is_dir());
        let missing = VolumeMount { name: "nope".into(), mount_path: "/x".into(), ..Default::default() };
        assert!(mounts(&volumes, &[missing]).unwrap_err().contains("cannot find volume \"nope\""));
    }

    #[test]
    fn items_pick_keys_and_paths() {
        let dir = tempfile::tempdir().unwrap();
        let data = BTreeMap::from([("a".to_string(), b"1".to_vec()), ("b".to_string(), b"2".to_vec())]);
        let items = [KeyToPath { key: "b".into(), path: "sub/b.txt".into(), ..Default::default() }];
        write_files(dir.path(), &data, Some(&items), 0o644).unwrap();
        assert_eq!(std::fs::read(dir.path().join("sub/b.txt")).unwrap(), b"2");
        assert!(!dir.path().join("a").exists());
    }
}
