//! A PostgreSQL server of the test's own, from the machine's packages
//! (Debian's `postgresql`; the README's test command installs it): `initdb`
//! into a folder of the system's temporary directory (which the `postgres`
//! user can reach, unlike a checkout under `/root`), removed afterwards, started on a free loopback port and a Unix socket
//! in that folder, stopped (immediately) when the guard drops. `initdb`
//! refuses to run as root, so as root the server runs as the `postgres` user.
//!
//! Without PostgreSQL a test skips with a message, except under `CI`, where
//! a missing server is a failure.

use std::path::PathBuf;
use std::process::Command;

/// A running server; stopped on drop.
pub struct PgServer {
    bin: PathBuf,
    data: PathBuf,
    /// Its folder (data directory, socket, log).
    pub dir: PathBuf,
    /// Its loopback port.
    pub port: u16,
    run_as: Option<&'static str>,
}

/// The folder of PostgreSQL's server programs: `SWITCHYARD_PG_BIN`, else the
/// newest `/usr/lib/postgresql/<version>/bin`, else `pg_config --bindir`.
fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SWITCHYARD_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    dir.join("initdb").is_file().then_some(dir)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl PgServer {
    /// Start a server for test `name`, or `None` (with a message) when this
    /// machine has no PostgreSQL and `CI` is not set.
    pub fn start(name: &str) -> Option<PgServer> {
        let dir = std::env::temp_dir().join(format!("switchyard-pg-{name}-{}", std::process::id()));
        let dir = dir.as_path();
        let Some(bin) = bin_dir() else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); the README's test command installs it"
                );
            }
            eprintln!("skipped: PostgreSQL is not installed (apt-get install postgresql)");
            return None;
        };
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        let run_as = is_root().then_some("postgres");
        if let Some(user) = run_as {
            let status = Command::new("chown").args(["-R", user]).arg(dir).status().unwrap();
            assert!(status.success(), "chown {} to {user}", dir.display());
        }
        let server = PgServer { bin, data: dir.join("data"), dir: dir.to_owned(), port: free_port(), run_as };
        let initdb = server.run(
            "initdb",
            &["-D", server.data.to_str().unwrap(), "-U", "switchyard", "-A", "trust", "--no-sync", "-E", "UTF8"],
        );
        assert!(initdb.status.success(), "initdb failed: {}", String::from_utf8_lossy(&initdb.stderr));
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            server.port,
            server.dir.display()
        );
        let log = server.dir.join("postgres.log");
        let started = server.run(
            "pg_ctl",
            &[
                "-D",
                server.data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            started.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&started.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Some(server)
    }

    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        let program = self.bin.join(program);
        let mut command = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        command.args(args).current_dir(&self.dir).output().unwrap_or_else(|e| panic!("{}: {e}", program.display()))
    }

    /// A new, empty database; its URL.
    pub fn database(&self, name: &str) -> String {
        let url = format!("postgresql://switchyard@127.0.0.1:{}/postgres", self.port);
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        // One statement each: DROP DATABASE cannot run in the implicit
        // transaction of a multi-statement batch.
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).unwrap();
        client.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        format!("postgresql://switchyard@127.0.0.1:{}/{name}", self.port)
    }

    /// A client of database `name`.
    pub fn client(&self, name: &str) -> postgres::Client {
        let url = format!("postgresql://switchyard@127.0.0.1:{}/{name}", self.port);
        postgres::Client::connect(&url, postgres::NoTls).unwrap()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.run("pg_ctl", &["-D", self.data.to_str().unwrap_or_default(), "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
