//! A real SMTP server for the tests: aiosmtpd (PyPI) in its own process.
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// aiosmtpd writing every message it receives into a maildir; stopped on drop.
pub struct SmtpServer {
    child: Child,
    maildir: PathBuf,
    pub port: u16,
}

impl SmtpServer {
    pub fn start(dir: &Path) -> SmtpServer {
        let port = super::free_port();
        let maildir = dir.join("maildir");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .env("PYTHONPATH", super::python_packages("aiosmtpd", "aiosmtpd==1.4.6"))
            .spawn()
            .expect("python3 runs");
        let server = SmtpServer { child, maildir, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start on port {port}; is it installed (pip install aiosmtpd)?"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// (recipient, subject, body) of every message received.
    pub fn messages(&self) -> Vec<(String, String, String)> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else { return Vec::new() };
        entries
            .map(|entry| {
                let raw = std::fs::read(entry.unwrap().path()).unwrap();
                let mail = mailparse::parse_mail(&raw).unwrap();
                let header = |name: &str| {
                    mail.headers
                        .iter()
                        .find(|h| h.get_key().eq_ignore_ascii_case(name))
                        .map(|h| h.get_value())
                        .unwrap_or_default()
                };
                (header("To"), header("Subject"), mail.get_body().unwrap())
            })
            .collect()
    }
}

impl SmtpServer {
    /// The Message-ID of every message received (a resend carries its original's).
    pub fn message_ids(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else { return Vec::new() };
        entries
            .map(|entry| {
                let raw = std::fs::read(entry.unwrap().path()).unwrap();
                let mail = mailparse::parse_mail(&raw).unwrap();
                mail.headers
                    .iter()
                    .find(|h| h.get_key().eq_ignore_ascii_case("Message-ID"))
                    .map(|h| h.get_value())
                    .unwrap_or_default()
            })
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
