//! A private PostgreSQL server for the tests, started from the binaries of
//! the machine's `postgresql` package (Debian's `/usr/lib/postgresql/N/bin`,
//! or `$PG_BIN`): `initdb` into a temporary directory, `pg_ctl start` on
//! 127.0.0.1 and a free port, trust authentication for the user
//! `sandflow`. A watchdog process stops the server and removes its
//! directory when the test process ends, however it ends: it waits on a
//! pipe from this process, which the kernel closes.
//!
//! When the tests run as root (as CI does), the server runs as `nobody`,
//! since PostgreSQL refuses to run as root.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The uid and gid of `nobody`, which runs the server when the tests run
/// as root.
const NOBODY: u32 = 65534;

/// A running server.
#[derive(Debug)]
pub struct Server {
    bin: PathBuf,
    root: PathBuf,
    port: u16,
    durable: bool,
    /// Stops the server when its stdin closes (held, never written).
    _watchdog: Child,
}

/// The server shared by every test of this process, started on first use;
/// durable (see [`Server::start`]) when `SANDFLOW_TEST_POSTGRES_DURABLE=1`,
/// as benchmarks want.
pub fn shared() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let durable = std::env::var("SANDFLOW_TEST_POSTGRES_DURABLE").is_ok_and(|v| v == "1");
        Server::start(durable).unwrap_or_else(|e| panic!("could not start PostgreSQL: {e}"))
    })
}

impl Server {
    /// Starts a server; `durable`: with `fsync` (for benchmarks), else
    /// without (tests kill processes, the server's too, never the machine:
    /// a commit is written to the kernel before it is acknowledged either
    /// way, so an acknowledged commit survives a killed server).
    pub fn start(durable: bool) -> Result<Server, String> {
        let bin = binaries()?;
        let root =
            tempfile::Builder::new().prefix("sandflow-pg-").tempdir().map_err(|e| e.to_string())?.keep();
        if running_as_root() {
            std::os::unix::fs::chown(&root, Some(NOBODY), Some(NOBODY)).map_err(|e| e.to_string())?;
        }
        let mut initdb = command(&bin, "initdb");
        initdb
            .args(["-U", "sandflow", "--auth=trust", "-E", "UTF8", "--no-sync", "-D"])
            .arg(root.join("data"));
        run(&mut initdb)?;
        let watchdog = watchdog(&bin, &root)?;
        let mut server = Server { bin, root, port: 0, durable, _watchdog: watchdog };
        let mut last = String::new();
        // A port found free may be taken before the server binds it.
        for _ in 0..5 {
            server.port = free_port()?;
            match server.start_again() {
                Ok(()) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(format!("the server did not start: {last}"))
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://sandflow@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates a new, empty database and answers its URL.
    pub fn database(&self) -> Result<String, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("t{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let mut createdb = command(&self.bin, "createdb");
        createdb.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "sandflow", &name]);
        run(&mut createdb)?;
        Ok(self.url(&name))
    }

    /// Stops the server at once (`immediate`: as if it crashed; clients'
    /// connections drop).
    pub fn stop(&self) -> Result<(), String> {
        run(self.pg_ctl().args(["-m", "immediate", "-w", "stop"]))
    }

    /// Starts the stopped server again on the same port; waits until it
    /// takes connections.
    pub fn start_again(&self) -> Result<(), String> {
        let sync = if self.durable { "on" } else { "off" };
        let options = format!(
            "-h 127.0.0.1 -p {} -k {} -c fsync={sync} -c full_page_writes={sync} -c synchronous_commit=on \
             -c max_connections=200",
            self.port,
            self.root.display()
        );
        let log = self.root.join("server.log");
        run(self.pg_ctl().arg("-l").arg(log).args(["-w", "-t", "60", "-o", &options, "start"]))
    }

    fn pg_ctl(&self) -> Command {
        let mut pg_ctl = command(&self.bin, "pg_ctl");
        pg_ctl.arg("-D").arg(self.root.join("data"));
        pg_ctl
    }
}

/// The directory of the PostgreSQL binaries: `$PG_BIN`, else the newest
/// `/usr/lib/postgresql/N/bin`.
fn binaries() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(dir.into());
    }
    let versions = std::fs::read_dir("/usr/lib/postgresql").map_err(|e| {
        format!("no PostgreSQL under /usr/lib/postgresql ({e}); install Debian's `postgresql` or set PG_BIN")
    })?;
    let newest = versions
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .max()
        .ok_or("no PostgreSQL version under /usr/lib/postgresql")?;
    Ok(PathBuf::from(format!("/usr/lib/postgresql/{newest}/bin")))
}

/// A command of the server's binaries, run as `nobody` when this process is
/// root.
fn command(bin: &Path, name: &str) -> Command {
    let mut command = Command::new(bin.join(name));
    command.stdin(Stdio::null());
    if running_as_root() {
        command.uid(NOBODY).gid(NOBODY).current_dir("/");
    }
    command
}

/// Runs `command`, failing with its output when it fails.
fn run(command: &mut Command) -> Result<(), String> {
    let out = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{command:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// The process that stops the server and removes `root` once its stdin
/// (a pipe from this process) closes.
fn watchdog(bin: &Path, root: &Path) -> Result<Child, String> {
    let script = r#"read -r _; "$0/pg_ctl" -D "$1/data" -m immediate -w stop >/dev/null 2>&1; rm -rf "$1""#;
    let mut watchdog = Command::new("sh");
    watchdog.arg("-c").arg(script).arg(bin).arg(root).stdin(Stdio::piped()).stdout(Stdio::null());
    if running_as_root() {
        watchdog.uid(NOBODY).gid(NOBODY).current_dir("/");
    }
    // Not in this process's group: a Ctrl-C of the tests reaches the
    // watchdog only through its pipe, after the tests are gone.
    watchdog.process_group(0);
    watchdog.spawn().map_err(|e| format!("could not start the watchdog: {e}"))
}

/// A port on 127.0.0.1 that nothing listens on now.
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Whether this process runs as root (its effective uid is 0).
fn running_as_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
    uid == Some("0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_starts_takes_databases_and_starts_again() {
        let server = Server::start(false).unwrap();
        let url = server.database().unwrap();
        assert!(url.starts_with(&format!("postgres://sandflow@127.0.0.1:{}/t", server.port())), "{url}");
        server.stop().unwrap();
        assert!(std::net::TcpStream::connect(("127.0.0.1", server.port())).is_err(), "stopped");
        server.start_again().unwrap();
        server.database().unwrap();
    }
}
