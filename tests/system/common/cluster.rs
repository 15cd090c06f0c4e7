//! A private PostgreSQL cluster, made with `initdb` on a port of its own, for the test that
//! restarts its database mid-run without disturbing the other tests' shared server.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

pub struct PrivateCluster {
    bin: PathBuf,
    /// Holds the data directory, the socket and the server's log; removed on drop.
    dir: PathBuf,
    pub port: u16,
}

impl PrivateCluster {
    pub fn start() -> anyhow::Result<PrivateCluster> {
        let bin = server_binaries()?;
        let dir = std::env::temp_dir().join(format!("hub-pg-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir(&dir)?;
        let cluster = PrivateCluster { bin, dir, port: super::free_port() };
        if is_root() {
            // The server refuses to run as root: the cluster belongs to the postgres account.
            run(Command::new("chown").args(["postgres:postgres", &cluster.dir.display().to_string()]))?;
        }
        cluster.server_command("initdb", &["-D", &cluster.data(), "-A", "trust", "-U", "postgres", "--no-sync"])?;
        cluster.pg_ctl("start")?;
        Ok(cluster)
    }

    /// The `postgres` database as `user` (trusted, no password).
    pub fn url(&self, user: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/postgres", self.port)
    }

    /// A fast restart: open connections are cut, the server is back when this returns.
    pub fn restart(&self) -> anyhow::Result<()> {
        self.pg_ctl("restart")
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn pg_ctl(&self, action: &str) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        self.server_command("pg_ctl", &[action, "-w", "-m", "fast", "-D", &self.data(), "-l", &log, "-o", &options])
    }

    fn server_command(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let program = self.bin.join(program);
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        run(command.args(args).current_dir(&self.dir))
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self.server_command("pg_ctl", &["stop", "-m", "immediate", "-D", &self.data()]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where `initdb` and `pg_ctl` are: HUB_TEST_PG_BIN, else the newest Debian server package.
fn server_binaries() -> anyhow::Result<PathBuf> {
    if let Ok(bin) = std::env::var("HUB_TEST_PG_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no PostgreSQL server under /usr/lib/postgresql (set HUB_TEST_PG_BIN)")?
        .flatten()
        .filter_map(|entry| Some((entry.file_name().to_str()?.parse().ok()?, entry.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| Path::new(bin).join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).context("no initdb under /usr/lib/postgresql/*/bin (set HUB_TEST_PG_BIN)")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output().with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
