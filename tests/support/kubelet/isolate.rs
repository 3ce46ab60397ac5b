//! Starting a container's process as a container runtime would, with what Linux offers a root
//! process: the image's root is a directory tree of the container's own (the host's `/usr` and
//! `/etc` bound read-only into it, plus the image's files), entered with `chroot` in a private mount
//! namespace where the volumes are bound at their mount paths. With `readOnlyRootFilesystem` the
//! tree itself is remounted read-only while the volumes stay writable, so a write outside them
//! fails with `EROFS` as in a pod. The process then drops to the container's user and groups.
//!
//! Processes share the host's network and PID namespaces (see `mod.rs` for how pod IPs are played).
//! Where mount namespaces are not allowed (not root, or a sandbox without `CAP_SYS_ADMIN`),
//! [`available`] says why and the kubelet does not execute containers.

use std::{
    ffi::CString,
    io,
    os::unix::{ffi::OsStrExt as _, fs::PermissionsExt as _},
    path::{Path, PathBuf},
    process::Stdio,
};

/// A bind mount into the container: `source` on the host at `target` in the container.
#[derive(Clone, Debug)]
pub struct Mount {
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
}

/// Everything needed to start one process of a container.
#[derive(Clone, Debug)]
pub struct Spec {
    /// `argv[0]` is the program, an absolute path inside the container.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub rootfs: PathBuf,
    pub working_dir: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub read_only_root: bool,
    /// In the order they are mounted; a parent directory before what is mounted inside it.
    pub mounts: Vec<Mount>,
    /// Where stdout and stderr go.
    pub log: PathBuf,
}

/// The host directories every image root gets, read-only: programs, libraries, `/etc` (users, CA
/// certificates). Symlinks among them (`/bin -> usr/bin`) are copied as symlinks.
const HOST_DIRS: &[&str] = &["usr", "etc", "bin", "sbin", "lib", "lib64"];
const DEVICES: &[&str] = &["null", "zero", "urandom", "random"];

/// Whether this process may make mount namespaces; `Err` says why not.
pub fn available() -> Result<(), String> {
    let probe = std::process::Command::new("/bin/true").stdin(Stdio::null()).pre_exec_unshare().status();
    match probe {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("a process in a private mount namespace exited with {s}")),
        Err(e) => Err(format!("cannot make a private mount namespace: {e} (the suite must run as root)")),
    }
}

trait Unshare {
    fn pre_exec_unshare(&mut self) -> &mut Self;
}

impl Unshare for std::process::Command {
    fn pre_exec_unshare(&mut self) -> &mut Self {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: only async-signal-safe calls, no allocation.
        unsafe {
            self.pre_exec(|| {
                check(libc::unshare(libc::CLONE_NEWNS))?;
                check(libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ))
            })
        }
    }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Lays out an image's root in `rootfs`: mount points for the host directories, `/dev` with its
/// usual devices, `/tmp`, the image's home and working directory, and the stand-in binary's place.
/// Returns the mounts that put the host's files there (before the container's own).
pub fn image_root(rootfs: &Path, image: &super::image::ImageConfig) -> io::Result<Vec<Mount>> {
    std::fs::create_dir_all(rootfs)?;
    let mut mounts = Vec::new();
    for dir in HOST_DIRS {
        let host = Path::new("/").join(dir);
        let inside = rootfs.join(dir);
        // Called again for each start of the container: what exists stays, the mounts are made anew.
        match std::fs::read_link(&host) {
            Ok(_) if inside.symlink_metadata().is_ok() => {}
            Ok(link) => std::os::unix::fs::symlink(link, &inside)?,
            Err(_) if host.is_dir() => {
                std::fs::create_dir_all(&inside)?;
                mounts.push(Mount { source: host, target: format!("/{dir}"), read_only: true });
            }
            Err(_) => {}
        }
    }
    let dev = rootfs.join("dev");
    std::fs::create_dir_all(&dev)?;
    for d in DEVICES {
        touch(&dev.join(d))?;
        mounts.push(Mount {
            source: Path::new("/dev").join(d),
            target: format!("/dev/{d}"),
            read_only: false,
        });
    }
    let tmp = rootfs.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))?;
    // The distroless `nonroot` home belongs to its user, as in the images.
    let home = rootfs.join(image.working_dir.trim_start_matches('/'));
    std::fs::create_dir_all(&home)?;
    chown(&home, image.user, image.user)?;
    if let Some(binary) = &image.standin {
        touch(&rootfs.join(binary.trim_start_matches('/')))?;
        let exe = std::env::current_exe()?;
        mounts.push(Mount { source: exe, target: binary.clone(), read_only: true });
    }
    Ok(mounts)
}

/// Creates the mount point of `m` inside `rootfs` (a file for a file, a directory otherwise).
pub fn mount_point(rootfs: &Path, m: &Mount) -> io::Result<()> {
    let inside = rootfs.join(m.target.trim_start_matches('/'));
    if inside.symlink_metadata().is_ok() {
        return Ok(());
    }
    if m.source.is_dir() {
        std::fs::create_dir_all(&inside)
    } else {
        if let Some(parent) = inside.parent() {
            std::fs::create_dir_all(parent)?;
        }
        touch(&inside)
    }
}

fn touch(path: &Path) -> io::Result<()> {
    std::fs::OpenOptions::new().create(true).append(true).open(path).map(|_| ())
}

pub fn chown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
}

fn cstring(s: impl AsRef<[u8]>) -> io::Result<CString> {
    CString::new(s.as_ref()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))
}

/// One mount call, prepared before `fork` so that the child allocates nothing.
struct MountCall {
    source: Option<CString>,
    target: CString,
    flags: libc::c_ulong,
}

/// Starts the process: it runs in its own mount namespace, chrooted into `spec.rootfs`, as
/// `spec.uid`, and is killed if the kubelet's thread dies.
pub fn spawn(spec: &Spec) -> io::Result<tokio::process::Child> {
    let mut calls = Vec::new();
    let root = spec.rootfs.as_os_str().as_bytes();
    let bind = libc::MS_BIND | libc::MS_REC;
    let read_only = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
    calls.push(MountCall { source: Some(cstring(root)?), target: cstring(root)?, flags: bind });
    for m in &spec.mounts {
        mount_point(&spec.rootfs, m)?;
        let target = cstring(spec.rootfs.join(m.target.trim_start_matches('/')).as_os_str().as_bytes())?;
        calls.push(MountCall {
            source: Some(cstring(m.source.as_os_str().as_bytes())?),
            target: target.clone(),
            flags: bind,
        });
        if m.read_only {
            calls.push(MountCall { source: None, target, flags: read_only });
        }
    }
    if spec.read_only_root {
        calls.push(MountCall { source: None, target: cstring(root)?, flags: read_only });
    }
    let root_c = cstring(root)?;
    let workdir = cstring(&spec.working_dir)?;
    let (uid, gid, groups) = (spec.uid, spec.gid, spec.groups.clone());
    let parent = std::process::id() as libc::pid_t;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&spec.log)?;
    let mut cmd = tokio::process::Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..])
        .env_clear()
        .envs(spec.env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    // SAFETY: the closure makes only async-signal-safe calls on data prepared above.
    unsafe {
        cmd.pre_exec(move || {
            check(libc::unshare(libc::CLONE_NEWNS))?;
            let none = std::ptr::null();
            check(libc::mount(none, c"/".as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, none.cast()))?;
            for c in &calls {
                let source = c.source.as_ref().map_or(none, |s| s.as_ptr());
                check(libc::mount(source, c.target.as_ptr(), none, c.flags, none.cast()))?;
            }
            check(libc::chroot(root_c.as_ptr()))?;
            check(libc::chdir(workdir.as_ptr()))?;
            check(libc::setgroups(groups.len(), groups.as_ptr()))?;
            check(libc::setgid(gid))?;
            check(libc::setuid(uid))?;
            // After setuid, which clears it: the process dies with the suite.
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
            if libc::getppid() != parent {
                libc::_exit(137);
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Sends `signal` to the process.
pub fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) on a pid this kubelet started and has not reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// Kills the process at once, as a crash or a node would.
pub fn kill(pid: u32) {
    signal(pid, libc::SIGKILL);
}

/// Resident memory of the process, in bytes (`/proc/<pid>/statm`).
pub fn rss(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * page.max(1) as u64)
}
