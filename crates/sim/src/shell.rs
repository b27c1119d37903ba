//! The built-in shell that runs exec requests on a simulated host.
//!
//! It is pure: it knows nothing of SSH. A script is parsed once (`syntax::parse`) and run
//! ([`run`]) with a [`Context`] (host, user, variables, pty, [`Stdin`]) against a [`Sink`]
//! that receives stdout and stderr incrementally, so big outputs (`head -c 100000000
//! /dev/zero`, `seq 10000000`) stream in [`CHUNK`]-sized pieces and stop as soon as the sink
//! reports that the reader is gone.
//!
//! Grammar (a small, POSIX-flavoured subset):
//!
//! 1. Words are split on blanks; `'...'`, `"..."` and `\x` quote as in `sh`.
//!    `$$`, `$?`, `$NAME` and `${NAME}` expand (outside single quotes). A variable is looked
//!    up in the shell's variables (`read`, `NAME=value`), then the environment the client
//!    sent, then `HOSTNAME`, `USER`, `LOGNAME`, `HOME`, `SHELL`; unknown ones are empty.
//! 2. Commands are joined by `;`, newline, `&&` and `||`, evaluated left to right with
//!    the usual short-circuit rules on the last exit status.
//! 3. Redirections `>&2`, `1>&2`, `2>&1`, `>/dev/null`, `2>/dev/null` apply to one command.
//!    Pipes, background jobs, subshells and input redirection are syntax errors (status 2).
//! 4. `NAME=value` alone sets a shell variable; before a command it sets that command's
//!    environment.
//!
//! Every command reads the same standard input: `read X` takes one line and leaves the
//! rest to the commands after it. With a pty ([`Context::pty`]), what a command reads
//! from stdin is echoed to stdout when it reads it, as a terminal echoes typed lines.

mod builtins;
mod context;
mod input;
mod interp;
mod stdin;
mod syntax;

pub(crate) use context::{
    AgentKey, AgentLink, BoxFuture, CHUNK, Closed, Context, Exit, ShellHost, Sink, Stream,
};
pub(crate) use interp::run;
pub(crate) use stdin::Stdin;

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::builtins::*;
    use super::context::*;
    use super::interp::*;
    use super::syntax::*;
    use super::*;
    use std::borrow::Cow;
    use std::sync::Arc;
    use std::time::Duration;

    /// Collects output; optionally closes after `close_after` bytes of stdout.
    #[derive(Default)]
    struct VecSink {
        out: Vec<u8>,
        err: Vec<u8>,
        writes: usize,
        max_write: usize,
        close_after: Option<usize>,
    }

    impl Sink for VecSink {
        async fn write(&mut self, stream: Stream, data: Cow<'static, [u8]>) -> Result<(), Closed> {
            self.writes += 1;
            self.max_write = self.max_write.max(data.len());
            match stream {
                Stream::Stdout => self.out.extend_from_slice(&data),
                Stream::Stderr => self.err.extend_from_slice(&data),
            }
            match self.close_after {
                Some(n) if self.out.len() >= n => Err(Closed),
                _ => Ok(()),
            }
        }
    }

    fn host() -> ShellHost {
        ShellHost {
            name: "sim00007".into(),
            pid: 4242,
        }
    }

    fn ctx() -> Context {
        Context::new(host(), "root")
    }

    async fn sh(script: &str) -> (String, String, Exit) {
        sh_with(script, &mut ctx()).await
    }

    /// Runs `script` with `ctx`, collecting its output.
    async fn sh_with(script: &str, ctx: &mut Context) -> (String, String, Exit) {
        let mut sink = VecSink::default();
        let exit = run(script, ctx, &mut sink).await.unwrap();
        (
            String::from_utf8(sink.out).unwrap(),
            String::from_utf8(sink.err).unwrap(),
            exit,
        )
    }

    fn words(script: &str) -> Vec<Vec<String>> {
        let script = parse(script).unwrap();
        script
            .commands
            .iter()
            .map(|(_, c)| c.words.iter().map(|w| expand(w, &ctx())).collect())
            .collect()
    }

    #[test]
    fn quoting() {
        assert_eq!(words("echo a  b\tc"), [["echo", "a", "b", "c"]]);
        assert_eq!(words("echo 'a b' \"c d\""), [["echo", "a b", "c d"]]);
        assert_eq!(words(r"echo a\ b"), [["echo", "a b"]]);
        assert_eq!(words(r#"echo "a\"b" 'x\y'"#), [["echo", "a\"b", r"x\y"]]);
        assert_eq!(words(r#"echo "a\nb""#), [["echo", r"a\nb"]]);
        assert_eq!(words("echo '' \"\""), [["echo", "", ""]]);
        assert_eq!(words("echo a'b'\"c\"d"), [["echo", "abcd"]]);
        assert_eq!(
            words("echo 'a;b' \"c&&d\" e\\;f"),
            [["echo", "a;b", "c&&d", "e;f"]]
        );
        assert_eq!(
            words("echo $$ \"$$\" '$$'"),
            [["echo", "4242", "4242", "$$"]]
        );
        assert_eq!(
            words("echo $HOSTNAME ${HOSTNAME}x $NOPE. $ a$"),
            [["echo", "sim00007", "sim00007x", ".", "$", "a$"]]
        );
        assert_eq!(words("echo a # comment"), [["echo", "a"]]);
        assert_eq!(words("echo a#b"), [["echo", "a#b"]]);
        assert_eq!(words("echo a \\\n b"), [["echo", "a", "b"]]);
        assert_eq!(words(""), Vec::<Vec<String>>::new());
        assert_eq!(words("  \n\n "), Vec::<Vec<String>>::new());
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "echo 'a",
            "echo \"a",
            "; echo a",
            "echo a;;",
            "echo a && && echo b",
            "echo a &&",
            "echo a ||",
            "echo a | wc",
            "sleep 1 &",
            "cat < /etc/hostname",
            "(echo a)",
            "echo a >",
            "echo `id`",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
        // A trailing `;` and empty lines are fine.
        assert!(parse("echo a;").is_ok());
        assert!(parse("echo a\n\necho b\n").is_ok());
        assert!(parse("echo a &&\n echo b").is_ok());
    }

    #[tokio::test]
    async fn syntax_error_is_status_2() {
        let (out, err, exit) = sh("echo 'a").await;
        assert_eq!(out, "");
        assert_eq!(err, "sh: syntax error: unterminated quoted string\n");
        assert_eq!(exit, Exit::Status(2));
    }

    #[tokio::test]
    async fn operators() {
        assert_eq!(sh("echo a; echo b").await.0, "a\nb\n");
        assert_eq!(sh("echo a\necho b").await.0, "a\nb\n");
        assert_eq!(sh("true && echo yes").await.0, "yes\n");
        assert_eq!(sh("false && echo yes").await.0, "");
        assert_eq!(sh("false || echo no").await.0, "no\n");
        assert_eq!(sh("true || echo no").await.0, "");
        assert_eq!(sh("false && echo a || echo b").await.0, "b\n");
        assert_eq!(sh("true && echo a || echo b").await.0, "a\n");
        assert_eq!(sh("false || false || echo c; echo d").await.0, "c\nd\n");
        assert_eq!(sh("false; echo $?").await.0, "1\n");
        assert_eq!(sh("nope; echo $?").await.0, "127\n");
        assert_eq!(sh("false").await.2, Exit::Status(1));
        assert_eq!(sh("false; true").await.2, Exit::Status(0));
        assert_eq!(sh("true; false").await.2, Exit::Status(1));
        assert_eq!(sh("true && false || true").await.2, Exit::Status(0));
    }

    #[tokio::test]
    async fn empty_script() {
        assert_eq!(
            sh("").await,
            (String::new(), String::new(), Exit::Status(0))
        );
        assert_eq!(sh("   ").await.2, Exit::Status(0));
    }

    #[tokio::test]
    async fn exit_stops_script() {
        let (out, _, exit) = sh("echo a; exit 3; echo b").await;
        assert_eq!(out, "a\n");
        assert_eq!(exit, Exit::Status(3));
        assert_eq!(sh("false; exit").await.2, Exit::Status(1));
        assert_eq!(sh("exit 256").await.2, Exit::Status(0));
        assert_eq!(sh("exit 300").await.2, Exit::Status(44));
        assert_eq!(
            sh("false || exit 4 && echo x").await,
            ("".into(), "".into(), Exit::Status(4))
        );
        let (_, err, exit) = sh("exit abc").await;
        assert_eq!(err, "sh: exit: Illegal number: abc\n");
        assert_eq!(exit, Exit::Status(2));
    }

    #[tokio::test]
    async fn echo() {
        assert_eq!(sh("echo").await.0, "\n");
        assert_eq!(sh("echo hello   world").await.0, "hello world\n");
        assert_eq!(sh("echo -n hi").await.0, "hi");
        assert_eq!(sh("echo -n -nn hi there").await.0, "hi there");
        assert_eq!(sh("echo -x hi").await.0, "-x hi\n");
        assert_eq!(sh("echo hi -n").await.0, "hi -n\n");
        assert_eq!(sh("/bin/echo ok").await.0, "ok\n");
    }

    #[tokio::test]
    async fn hostname_true_false() {
        assert_eq!(
            sh("hostname").await,
            ("sim00007\n".into(), "".into(), Exit::Status(0))
        );
        assert_eq!(sh("true").await.2, Exit::Status(0));
        assert_eq!(sh(":").await.2, Exit::Status(0));
        assert_eq!(sh("false").await.2, Exit::Status(1));
    }

    #[tokio::test]
    async fn sleep_waits() {
        let start = std::time::Instant::now();
        assert_eq!(sh("sleep 0.05").await.2, Exit::Status(0));
        assert!(start.elapsed() >= Duration::from_millis(50));
        let (_, err, exit) = sh("sleep x").await;
        assert_eq!(err, "sleep: invalid time interval 'x'\n");
        assert_eq!(exit, Exit::Status(1));
        assert_eq!(parse_sleep("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_sleep("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_sleep("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_sleep(".25s"), Some(Duration::from_millis(250)));
        assert_eq!(parse_sleep("-1"), None);
        assert_eq!(parse_sleep("s"), None);
        assert_eq!(parse_sleep(""), None);
    }

    #[tokio::test]
    async fn cat() {
        assert_eq!(sh("cat /etc/hostname").await.0, "sim00007\n");
        let (os, _, exit) = sh("cat /etc/os-release").await;
        assert!(os.contains("ID=fleetsh-sim\n"), "{os}");
        assert_eq!(exit, Exit::Status(0));

        let mut sink = VecSink::default();
        run("cat /srv/data/26k.txt", &mut ctx(), &mut sink)
            .await
            .unwrap();
        assert_eq!(sink.out.len(), FILE_26K_LEN);
        assert_eq!(sink.out, file_26k());
        assert!(sink.out.ends_with(b"\n"));
        assert!(
            sink.out
                .iter()
                .all(|b| *b == b'\n' || b.is_ascii_graphic() || *b == b' ')
        );
        assert_eq!(sink.out.iter().filter(|b| **b == b'\n').count(), 400);

        let (out, err, exit) = sh("cat /etc/hostname /nope /etc/hostname").await;
        assert_eq!(out, "sim00007\nsim00007\n");
        assert_eq!(err, "cat: /nope: No such file or directory\n");
        assert_eq!(exit, Exit::Status(1));
    }

    #[tokio::test]
    async fn head_streams_in_chunks() {
        let mut sink = VecSink::default();
        let exit = run("head -c 1000000 /dev/zero", &mut ctx(), &mut sink)
            .await
            .unwrap();
        assert_eq!(exit, Exit::Status(0));
        assert_eq!(sink.out.len(), 1_000_000);
        assert!(sink.out.iter().all(|b| *b == 0));
        assert_eq!(sink.max_write, CHUNK);
        assert_eq!(sink.writes, 1_000_000usize.div_ceil(CHUNK));

        let mut a = VecSink::default();
        run("head -c 100000 /dev/urandom", &mut ctx(), &mut a)
            .await
            .unwrap();
        let mut b = VecSink::default();
        run("head -c100000 /dev/urandom", &mut ctx(), &mut b)
            .await
            .unwrap();
        assert_eq!(a.out.len(), 100_000);
        assert_eq!(a.out, b.out, "deterministic");
        assert!(a.out.iter().filter(|x| **x == 0).count() < 2_000);

        assert_eq!(sh("head -c 0 /dev/zero").await.0, "");
        assert_eq!(sh("head -c 3 /etc/hostname").await.0, "sim");
        assert_eq!(sh("head -n 2 /srv/data/26k.txt").await.0.len(), 130);
        assert_eq!(sh("head /srv/data/26k.txt").await.0.len(), 650);
        let (_, err, exit) = sh("head -c 5 /nope").await;
        assert_eq!(
            err,
            "head: cannot open '/nope' for reading: No such file or directory\n"
        );
        assert_eq!(exit, Exit::Status(1));
        assert_eq!(sh("head -c x /dev/zero").await.2, Exit::Status(1));
    }

    #[tokio::test]
    async fn output_stops_when_sink_closes() {
        let mut sink = VecSink {
            close_after: Some(100_000),
            ..VecSink::default()
        };
        let result = run(
            "head -c 100000000000 /dev/zero; echo after",
            &mut ctx(),
            &mut sink,
        )
        .await;
        assert_eq!(result, Err(Closed));
        assert!(sink.out.len() < 100_000 + CHUNK);
    }

    #[tokio::test]
    async fn seq() {
        assert_eq!(sh("seq 3").await.0, "1\n2\n3\n");
        assert_eq!(sh("seq 0").await.0, "");
        assert_eq!(sh("seq 2 4").await.0, "2\n3\n4\n");
        assert_eq!(sh("seq 5 -2 1").await.0, "5\n3\n1\n");
        assert_eq!(sh("seq x").await.2, Exit::Status(1));
        assert_eq!(sh("seq").await.2, Exit::Status(1));

        let mut sink = VecSink::default();
        run("seq 100000", &mut ctx(), &mut sink).await.unwrap();
        let text = String::from_utf8(sink.out).unwrap();
        assert_eq!(text.lines().count(), 100_000);
        assert_eq!(text.lines().last(), Some("100000"));
        assert!(sink.writes > 10, "streamed in pieces");
        assert!(sink.max_write < CHUNK + 32);
    }

    #[tokio::test]
    async fn kill_self_is_a_signal() {
        let (out, _, exit) = sh("echo before; kill -9 $$; echo after").await;
        assert_eq!(out, "before\n");
        assert_eq!(exit, Exit::Signal("KILL"));
        assert_eq!(sh("kill -KILL $$").await.2, Exit::Signal("KILL"));
        assert_eq!(sh("kill -SIGKILL $$").await.2, Exit::Signal("KILL"));
        assert_eq!(sh("kill -TERM $$").await.2, Exit::Signal("TERM"));
        assert_eq!(sh("kill -15 $$").await.2, Exit::Signal("TERM"));
        assert_eq!(sh("kill $$").await.2, Exit::Signal("TERM"));
        assert_eq!(sh("kill -s HUP $$").await.2, Exit::Signal("HUP"));
        assert_eq!(sh("kill -2 $$").await.2, Exit::Signal("INT"));

        let (_, err, exit) = sh("kill -9 1").await;
        assert_eq!(err, "sh: kill: (1) - No such process\n");
        assert_eq!(exit, Exit::Status(1));
        let (_, err, exit) = sh("kill -FOO $$").await;
        assert_eq!(err, "sh: kill: FOO: invalid signal specification\n");
        assert_eq!(exit, Exit::Status(1));
    }

    #[tokio::test]
    async fn unknown_command() {
        let (out, err, exit) = sh("frobnicate --now").await;
        assert_eq!(out, "");
        assert_eq!(err, "sh: frobnicate: not found\n");
        assert_eq!(exit, Exit::Status(127));
    }

    #[tokio::test]
    async fn redirects() {
        assert_eq!(
            sh("echo hi >&2").await,
            ("".into(), "hi\n".into(), Exit::Status(0))
        );
        assert_eq!(
            sh("echo hi 1>&2").await,
            ("".into(), "hi\n".into(), Exit::Status(0))
        );
        assert_eq!(sh(">&2 echo hi").await.1, "hi\n");
        assert_eq!(
            sh("echo a >&2; echo b").await,
            ("b\n".into(), "a\n".into(), Exit::Status(0))
        );
        assert_eq!(sh("nope 2>&1").await.0, "sh: nope: not found\n");
        assert_eq!(
            sh("nope 2>/dev/null").await,
            ("".into(), "".into(), Exit::Status(127))
        );
        assert_eq!(sh("echo hi >/dev/null").await.0, "");
        assert_eq!(sh("echo hi > /dev/null").await.0, "");
        assert_eq!(sh("cat /etc/hostname 1>&2").await.1, "sim00007\n");
        // Quoted, `>&2` is just a word.
        assert_eq!(sh("echo '>&2'").await.0, ">&2\n");
        assert_eq!(sh("echo \"1\">&2").await.1, "1\n");
        let (_, err, exit) = sh("echo hi > /tmp/x").await;
        assert_eq!(err, "sh: cannot create /tmp/x: Read-only file system\n");
        assert_eq!(exit, Exit::Status(2));
    }

    /// A context with `input` as stdin.
    fn with_stdin(input: &'static [u8]) -> Context {
        let mut ctx = ctx();
        ctx.stdin = Stdin::new(input);
        ctx
    }

    #[tokio::test]
    async fn cat_and_wc_read_stdin() {
        let (out, _, exit) = sh_with("cat", &mut with_stdin(b"a\nb\n")).await;
        assert_eq!((out.as_str(), exit), ("a\nb\n", Exit::Status(0)));
        assert_eq!(sh_with("cat -", &mut with_stdin(b"x")).await.0, "x");
        assert_eq!(
            sh_with(
                "cat /etc/hostname - /etc/hostname",
                &mut with_stdin(b"mid\n")
            )
            .await
            .0,
            "sim00007\nmid\nsim00007\n"
        );
        assert_eq!(sh_with("wc -c", &mut with_stdin(b"12345")).await.0, "5\n");
        assert_eq!(sh_with("wc -l", &mut with_stdin(b"a\nb\nc")).await.0, "2\n");
        assert_eq!(
            sh_with("wc", &mut with_stdin(b"one two\nthree\n")).await.0,
            "      2       3      14\n"
        );
        assert_eq!(sh("wc -c /etc/hostname").await.0, "9 /etc/hostname\n");
        assert_eq!(sh("wc -c").await.0, "0\n", "no stdin is empty stdin");
        // The first command takes it all.
        assert_eq!(
            sh_with("cat; wc -c", &mut with_stdin(b"abc")).await.0,
            "abc0\n"
        );
    }

    #[tokio::test]
    async fn head_reads_stdin() {
        let mut c = with_stdin(b"line1\nline2\nline3\n");
        assert_eq!(
            sh_with("head -n 1; cat", &mut c).await.0,
            "line1\nline2\nline3\n"
        );
        let mut c = with_stdin(b"abcdef");
        assert_eq!(sh_with("head -c 2; echo; cat", &mut c).await.0, "ab\ncdef");
        let mut c = with_stdin(b"abcdef");
        assert_eq!(sh_with("head -c 100 -", &mut c).await.0, "abcdef");
    }

    #[tokio::test]
    async fn read_sets_variables() {
        let mut c = with_stdin(b"hello world\nsecond  line here\nlast");
        let (out, _, exit) = sh_with(
            "read X; echo got $X; read A B; echo \"[$A] [$B]\"; read -r R; echo $R $?; read Z; echo \"z=$Z\" $?",
            &mut c,
        )
        .await;
        assert_eq!(out, "got hello world\n[second] [line here]\nlast 1\nz= 1\n");
        assert_eq!(exit, Exit::Status(0));
        let (out, _, _) = sh_with("read; echo $REPLY", &mut with_stdin(b"r\n")).await;
        assert_eq!(out, "r\n");
        let (_, err, exit) = sh("read 1x").await;
        assert_eq!(err, "sh: read: '1x': not a valid identifier\n");
        assert_eq!(exit, Exit::Status(2));
    }

    #[tokio::test]
    async fn variables_and_env() {
        let mut c = ctx();
        c.env.insert("LANG".into(), "C.UTF-8".into());
        c.env.insert("APP".into(), "x y".into());
        let (out, _, _) = sh_with("env; echo $LANG ${APP}!", &mut c).await;
        assert_eq!(out, "APP=x y\nLANG=C.UTF-8\nC.UTF-8 x y!\n");
        assert_eq!(sh("X=1; echo $X").await.0, "1\n");
        assert_eq!(sh("X=1 Y=2; echo $X$Y").await.0, "12\n");
        assert_eq!(sh("X=1 env; echo [$X]").await.0, "X=1\n[]\n");
        assert_eq!(sh("echo $USER $HOME").await.0, "root /root\n");
        let mut alice = Context::new(host(), "alice");
        assert_eq!(
            sh_with(
                "echo $USER $LOGNAME $HOME; whoami; id -un; id -u",
                &mut alice
            )
            .await
            .0,
            "alice alice /home/alice\nalice\nalice\n1000\n"
        );
    }

    #[tokio::test]
    async fn tty_and_pty_echo() {
        assert_eq!(
            sh("tty").await,
            ("not a tty\n".into(), "".into(), Exit::Status(1))
        );
        let mut c = with_stdin(b"typed\n");
        c.pty = true;
        let (out, _, exit) = sh_with("tty; read X; echo got $X", &mut c).await;
        assert_eq!(out, "/dev/pts/0\ntyped\ngot typed\n");
        assert_eq!(exit, Exit::Status(0));
        // The echo goes to the terminal whatever the redirections.
        let mut c = with_stdin(b"typed\n");
        c.pty = true;
        assert_eq!(sh_with("read X >/dev/null", &mut c).await.0, "typed\n");
    }

    #[tokio::test]
    async fn sh_c_runs_a_subshell() {
        assert_eq!(
            sh("sh -c 'echo in; exit 3'; echo after $?").await.0,
            "in\nafter 3\n"
        );
        assert_eq!(sh("/bin/sh -c 'X=1'; echo [$X]").await.0, "[]\n");
        assert_eq!(sh("bash -lc 'hostname'").await.0, "sim00007\n");
        assert_eq!(sh("sh -ec 'echo hi' >&2").await.1, "hi\n");
        assert_eq!(sh("sh -c 'echo a >&2' 2>/dev/null").await.1, "");
        let (_, err, exit) = sh("sh -c").await;
        assert_eq!(err, "sh: -c: option requires an argument\n");
        assert_eq!(exit, Exit::Status(2));
        assert_eq!(sh("sh -c \"echo 'x\"").await.2, Exit::Status(2));
        assert_eq!(sh("sh -c \"echo 'x\"; echo $?").await.0, "2\n");
        assert_eq!(
            sh("sh -c 'kill -9 $$'; echo no").await.2,
            Exit::Signal("KILL")
        );
        // A script on stdin.
        let (out, _, _) = sh_with("sh", &mut with_stdin(b"echo one\nhostname\n")).await;
        assert_eq!(out, "one\nsim00007\n");
        // Endless nesting stops at MAX_DEPTH.
        let (_, err, exit) = sh("X='sh -c \"$X\"'; sh -c \"$X\"").await;
        assert_eq!(err, "sh: too many nested shells\n");
        assert_eq!(exit, Exit::Status(2));
    }

    /// A context with a sudo password and `input` as stdin.
    fn sudo_ctx(input: &'static [u8]) -> Context {
        let mut c = with_stdin(input);
        c.sudo_password = Some(Arc::from("pw"));
        c
    }

    #[tokio::test]
    async fn sudo_checks_the_password() {
        let script = "sudo -S -p '' -u alice -- sh -c 'whoami; echo $USER $HOME $SUDO_USER; cat'";
        let (out, err, exit) = sh_with(script, &mut sudo_ctx(b"pw\nrest of stdin\n")).await;
        assert_eq!(out, "alice\nalice /home/alice root\nrest of stdin\n");
        assert_eq!(err, "");
        assert_eq!(exit, Exit::Status(0));

        let (out, err, exit) = sh_with(
            "sudo -S -p '' -- sh -c 'whoami; exit 4'; echo $? $USER",
            &mut sudo_ctx(b"pw\n"),
        )
        .await;
        assert_eq!((out.as_str(), err.as_str()), ("root\n4 root\n", ""));
        assert_eq!(exit, Exit::Status(0));

        let (out, err, exit) =
            sh_with("sudo -S -p 'Password: ' whoami", &mut sudo_ctx(b"wrong\n")).await;
        assert_eq!(out, "");
        assert_eq!(
            err,
            "Password: Sorry, try again.\nPassword: sudo: 1 incorrect password attempt\n"
        );
        assert_eq!(exit, Exit::Status(1));
        // Three attempts, as sudo's default; the third right one would have passed.
        let (out, err, exit) =
            sh_with("sudo -S -p 'P: ' whoami", &mut sudo_ctx(b"a\nb\nc\npw\n")).await;
        assert_eq!(out, "");
        assert_eq!(
            err,
            "P: Sorry, try again.\nP: Sorry, try again.\nP: sudo: 3 incorrect password attempts\n"
        );
        assert_eq!(exit, Exit::Status(1));
        let (out, err, exit) = sh_with("sudo -S -p 'P: ' whoami", &mut sudo_ctx(b"a\npw\n")).await;
        assert_eq!(
            (out.as_str(), err.as_str()),
            ("root\n", "P: Sorry, try again.\nP: ")
        );
        assert_eq!(exit, Exit::Status(0));

        let (_, err, exit) = sh_with("sudo -S whoami", &mut sudo_ctx(b"")).await;
        assert_eq!(
            err,
            "[sudo] password for root: sudo: no password was provided\n"
        );
        assert_eq!(exit, Exit::Status(1));

        let (_, err, exit) = sh_with("sudo -S -p '' whoami", &mut with_stdin(b"pw\n")).await;
        assert_eq!(err, "sudo: a password is required\n");
        assert_eq!(exit, Exit::Status(1));

        let (_, err, exit) = sh_with("sudo whoami", &mut sudo_ctx(b"pw\n")).await;
        assert!(err.starts_with("sudo: a terminal is required"), "{err}");
        assert_eq!(exit, Exit::Status(1));

        let (_, err, exit) = sh_with("sudo -x whoami", &mut sudo_ctx(b"pw\n")).await;
        assert!(
            err.starts_with("sudo: invalid option -- 'x'\nusage: sudo"),
            "{err}"
        );
        assert_eq!(exit, Exit::Status(1));
        assert_eq!(
            sh_with("sudo -Sp '%u@%h: ' -ubob whoami", &mut sudo_ctx(b"pw\n"))
                .await
                .1,
            "root@sim00007: "
        );
    }

    #[tokio::test]
    async fn sudo_never_echoes_the_password() {
        let (out, _, _) = sh_with("sudo -S -p '' whoami", &mut sudo_ctx(b"pw\n")).await;
        assert_eq!(out, "root\n");
        let mut c = sudo_ctx(b"pw\n");
        c.pty = true;
        let (out, err, _) = sh_with("sudo -p '' whoami", &mut c).await;
        assert_eq!((out.as_str(), err.as_str()), ("root\n", "\n"));
        // ^D ends a terminal's input.
        let mut c = sudo_ctx(b"\x04");
        c.pty = true;
        let (_, err, exit) = sh_with("sudo -p 'P: ' whoami", &mut c).await;
        assert_eq!(err, "P: sudo: no password was provided\n");
        assert_eq!(exit, Exit::Status(1));
    }

    #[test]
    fn file_26k_is_fixed() {
        let f = file_26k();
        assert_eq!(f.len(), 26_000);
        assert!(f.starts_with(b"00001 "));
        assert!(f.ends_with(b"\n"));
    }
}
