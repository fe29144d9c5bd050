//! The plan: everything user-data asks of a node, parsed, validated and resolved into plain
//! data before anything is written. Ignition and cloud-config both compile to it; the
//! [`crate::apply`] executor applies it; `--dry-run` prints it.

use std::fmt;
use std::path::PathBuf;

/// A user or group, by numeric id or by name (resolved against the target root's databases).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// Numeric id.
    Id(u32),
    /// Name in /etc/passwd or /etc/group of the target root.
    Name(String),
}

/// Owner of a file, directory or link; `None` means root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Owner {
    /// The owning user.
    pub user: Option<Principal>,
    /// The owning group.
    pub group: Option<Principal>,
}

/// How new contents meet an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Existing {
    /// Replace it.
    Overwrite,
    /// Fail: Ignition's `overwrite: false` with contents.
    Refuse,
    /// Keep its contents (append fragments still apply, mode and owner are set).
    Keep,
}

/// How a file is written where Ignition and cloud-init differ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Writer {
    /// The path itself is written (Ignition, and the files kiln derives itself): whatever is
    /// there (a symlink too) is replaced only as `existing` allows, after accounts are made.
    #[default]
    Replace,
    /// As cloud-init's `write_file` opens the path: a symlink at it is followed (inside the
    /// root) and its target written. Not `deferred` (write_files without `defer: true`,
    /// `mounts`): written before users and groups are made, as cloud-init's init-stage
    /// modules run before `users_groups`; `deferred`: after them.
    CloudInit {
        /// Written after the accounts (`defer: true`, or a config-stage module).
        deferred: bool,
    },
}

/// A regular file to write.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct File {
    /// Absolute path inside the root.
    pub path: PathBuf,
    /// New contents; `None` keeps an existing file's contents (or creates it empty).
    pub contents: Option<Vec<u8>>,
    /// Fragments appended after the contents, in order.
    pub append: Vec<Vec<u8>>,
    /// What to do if the file exists.
    pub existing: Existing,
    /// Permission bits; `None`: 0644 for new files, unchanged for existing ones.
    pub mode: Option<u32>,
    /// Owner.
    pub owner: Owner,
    /// How it is written (symlinks at the path, before or after accounts).
    pub writer: Writer,
    /// Where in the user-data it came from, for messages (e.g. `storage.files[3]`).
    pub origin: String,
}

impl File {
    /// Whether it is written before the accounts are made.
    pub fn before_accounts(&self) -> bool {
        self.writer == Writer::CloudInit { deferred: false }
    }
}

impl fmt::Debug for File {
    // Contents may be secrets: only sizes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("path", &self.path)
            .field("bytes", &self.contents.as_ref().map(Vec::len))
            .field("append_fragments", &self.append.len())
            .field("existing", &self.existing)
            .field("mode", &self.mode.map(|m| format!("{m:o}")))
            .field("owner", &self.owner)
            .field("writer", &self.writer)
            .field("origin", &self.origin)
            .finish()
    }
}

/// A directory to create.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Directory {
    /// Absolute path inside the root.
    pub path: PathBuf,
    /// Permission bits (default 0755).
    pub mode: Option<u32>,
    /// Owner.
    pub owner: Owner,
    /// Replace a non-directory at the path.
    pub overwrite: bool,
    /// Where in the user-data it came from.
    pub origin: String,
}

/// A symbolic or hard link to create.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Link {
    /// Absolute path inside the root.
    pub path: PathBuf,
    /// Link target (for hard links: an absolute path inside the root).
    pub target: PathBuf,
    /// Hard link instead of symbolic.
    pub hard: bool,
    /// Replace whatever is at the path.
    pub overwrite: bool,
    /// Owner (of the symlink itself).
    pub owner: Owner,
    /// Where in the user-data it came from.
    pub origin: String,
}

/// A filesystem entry, in the order they are applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Node {
    /// A directory.
    Directory(Directory),
    /// A regular file.
    File(File),
    /// A link.
    Link(Link),
}

impl Node {
    /// The entry's path.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Node::Directory(d) => &d.path,
            Node::File(f) => &f.path,
            Node::Link(l) => &l.path,
        }
    }

    /// Where in the user-data it came from.
    pub fn origin(&self) -> &str {
        match self {
            Node::Directory(d) => &d.origin,
            Node::File(f) => &f.origin,
            Node::Link(l) => &l.origin,
        }
    }
}

/// A systemd unit in /etc/systemd/system.
#[derive(Clone, PartialEq, Eq, Default, Hash)]
pub struct Unit {
    /// Unit name, e.g. `kubelet.service`.
    pub name: String,
    /// Unit file contents, if given.
    pub contents: Option<String>,
    /// `Some(true)`: enable, `Some(false)`: disable (via a preset, as Ignition does).
    pub enabled: Option<bool>,
    /// Mask (symlink to /dev/null).
    pub mask: bool,
    /// Drop-ins `(name, contents)` in `NAME.d/`.
    pub dropins: Vec<(String, Option<String>)>,
}

/// A group to create (or to add members to).
#[derive(Clone, PartialEq, Eq, Default, Hash)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Fixed gid.
    pub gid: Option<u32>,
    /// A system group.
    pub system: bool,
    /// Password hash (Ignition `passwordHash`).
    pub password_hash: Option<String>,
    /// Users to add as members (cloud-config `groups: - name: [members]`).
    pub members: Vec<String>,
}

/// Where authorized SSH keys are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum KeyFile {
    /// `~/.ssh/authorized_keys.d/ignition` (Ignition).
    #[default]
    IgnitionFragment,
    /// `~/.ssh/authorized_keys` (cloud-init).
    AuthorizedKeys,
}

/// A user to create or modify.
#[derive(Clone, PartialEq, Eq, Default, Hash)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Fixed uid.
    pub uid: Option<u32>,
    /// GECOS comment.
    pub gecos: Option<String>,
    /// Home directory.
    pub home_dir: Option<String>,
    /// Do not create the home directory.
    pub no_create_home: bool,
    /// Primary group.
    pub primary_group: Option<String>,
    /// Supplementary groups.
    pub groups: Vec<String>,
    /// Do not create a group named after the user.
    pub no_user_group: bool,
    /// Login shell.
    pub shell: Option<String>,
    /// A system account.
    pub system: bool,
    /// Password hash; `None` locks the password (`*`), as Ignition and cloud-init do.
    pub password_hash: Option<String>,
    /// Authorized SSH public keys.
    pub ssh_authorized_keys: Vec<String>,
    /// Which file the keys go to.
    pub key_file: KeyFile,
    /// sudoers rules (cloud-config `sudo`), written to /etc/sudoers.d.
    pub sudo: Vec<String>,
    /// Lock the password after setting it (cloud-config `lock_passwd`, default true).
    pub lock_password: bool,
    /// Create missing supplementary groups (cloud-init does; Ignition does not).
    pub create_groups: bool,
}

impl fmt::Debug for Unit {
    // Unit contents may embed secrets: names and states only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unit")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("mask", &self.mask)
            .field(
                "dropins",
                &self.dropins.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl fmt::Debug for Group {
    // No password hash.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("name", &self.name)
            .field("gid", &self.gid)
            .field("members", &self.members)
            .finish()
    }
}

impl fmt::Debug for User {
    // No password hash; keys are counted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("uid", &self.uid)
            .field("groups", &self.groups)
            .field("ssh_authorized_keys", &self.ssh_authorized_keys.len())
            .finish()
    }
}

/// When a command runs in the boot-time run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Before files are written (cloud-config `bootcmd`, boothooks).
    Boot,
    /// After everything is written (cloud-config `runcmd`).
    Run,
    /// After runcmd (user-data scripts, as cloud-init's scripts-user).
    Script,
}

/// A command the boot-time run executes; `apply --root` only records it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Command {
    /// When it runs.
    pub phase: Phase,
    /// argv; a string command is `["sh", "-c", STRING]`, a script is `[PATH]`.
    pub argv: Vec<String>,
    /// Script body for [`Phase::Script`] and boothooks, written before running.
    pub script: Option<Vec<u8>>,
    /// Where in the user-data it came from.
    pub origin: String,
}

impl fmt::Debug for Command {
    // Commands may carry secrets (kubeadm tokens): name them, never print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({:?} {})", self.phase, self.origin)
    }
}

/// Everything user-data asks for, in apply order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Plan {
    /// Groups, created first.
    pub groups: Vec<Group>,
    /// Users, created after groups and before files (so owners resolve).
    pub users: Vec<User>,
    /// Files, directories and links.
    pub nodes: Vec<Node>,
    /// systemd units.
    pub units: Vec<Unit>,
    /// Host name for /etc/hostname.
    pub hostname: Option<String>,
    /// Commands for the boot-time run.
    pub commands: Vec<Command>,
    /// Things the user-data asked for that kiln does not do, by name.
    pub warnings: Vec<String>,
}

impl Plan {
    /// The plan's SHA-256 (hex) over every field, contents included: names a commit in the
    /// apply journal, so the same plan applied again is recognised as done. Stable for one
    /// build of kiln (it follows the derived `Hash` of the plan's types).
    pub fn digest(&self) -> String {
        use std::hash::Hash;
        let mut hasher = Sha256Hasher(kiln_core::digest::Sha256Writer::new(std::io::sink()));
        self.hash(&mut hasher);
        hasher.0.finish().1
    }

    /// Appends `other` after `self` (MIME parts, Ignition merges after resolution).
    pub fn extend(&mut self, other: Plan) {
        self.groups.extend(other.groups);
        self.users.extend(other.users);
        self.nodes.extend(other.nodes);
        self.units.extend(other.units);
        if other.hostname.is_some() {
            self.hostname = other.hostname;
        }
        self.commands.extend(other.commands);
        self.warnings.extend(other.warnings);
    }
}

/// Feeds `Hash` into kiln-core's SHA-256 stream; [`Plan::digest`] takes the whole digest, so
/// `finish` (the `Hasher` API's 64-bit answer) is never used.
struct Sha256Hasher(kiln_core::digest::Sha256Writer<std::io::Sink>);

impl std::hash::Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        // Writing into a sink cannot fail.
        let _ = std::io::Write::write_all(&mut self.0, bytes);
    }

    fn finish(&self) -> u64 {
        0
    }
}

impl fmt::Display for Plan {
    /// The `--dry-run` listing: paths, modes, sizes, names; never contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_accounts(f)?;
        for n in &self.nodes {
            fmt_node(n, f)?;
        }
        for u in &self.units {
            writeln!(
                f,
                "unit      {} {} dropins={}",
                u.name,
                unit_state(u),
                u.dropins.len()
            )?;
        }
        if let Some(h) = &self.hostname {
            writeln!(f, "hostname  {h}")?;
        }
        for c in &self.commands {
            writeln!(f, "command   {:?} {}", c.phase, c.origin)?;
        }
        for w in &self.warnings {
            writeln!(f, "warning   {w}")?;
        }
        Ok(())
    }
}

impl Plan {
    /// The groups and users lines of the listing: names, ids, key counts, memberships.
    fn fmt_accounts(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for g in &self.groups {
            writeln!(
                f,
                "group     {}{}",
                g.name,
                g.gid.map(|id| format!(" gid={id}")).unwrap_or_default()
            )?;
        }
        for u in &self.users {
            writeln!(
                f,
                "user      {} keys={} groups={}",
                u.name,
                u.ssh_authorized_keys.len(),
                u.groups.join(",")
            )?;
        }
        Ok(())
    }
}

/// One listing line for a directory, file (size, not contents) or link.
fn fmt_node(node: &Node, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match node {
        Node::Directory(d) => writeln!(f, "directory {} {}", d.path.display(), mode_text(d.mode)),
        Node::File(x) => writeln!(
            f,
            "file      {} {} {} bytes{}",
            x.path.display(),
            mode_text(x.mode),
            x.contents.as_ref().map_or(0, Vec::len),
            if x.append.is_empty() {
                String::new()
            } else {
                format!(" +{} appended", x.append.len())
            }
        ),
        Node::Link(l) => writeln!(
            f,
            "{}  {} -> {}",
            if l.hard { "hardlink" } else { "symlink " },
            l.path.display(),
            l.target.display()
        ),
    }
}

/// What the listing says of a unit: masked wins over enabled or disabled; nothing if unset.
fn unit_state(unit: &Unit) -> &'static str {
    match (unit.mask, unit.enabled) {
        (true, _) => "masked",
        (false, Some(true)) => "enabled",
        (false, Some(false)) => "disabled",
        (false, None) => "",
    }
}

fn mode_text(mode: Option<u32>) -> String {
    mode.map_or_else(|| "default".into(), |m| format!("{m:04o}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(mask: bool, enabled: Option<bool>) -> Unit {
        Unit {
            name: "a.service".into(),
            mask,
            enabled,
            ..Unit::default()
        }
    }

    #[test]
    fn unit_state_masked_wins() {
        assert_eq!(unit_state(&unit(true, Some(true))), "masked");
        assert_eq!(unit_state(&unit(false, Some(true))), "enabled");
        assert_eq!(unit_state(&unit(false, Some(false))), "disabled");
        assert_eq!(unit_state(&unit(false, None)), "");
    }

    #[test]
    fn the_digest_covers_contents() {
        let file = |c: &str| Plan {
            nodes: vec![Node::File(File {
                path: "/f".into(),
                contents: Some(c.as_bytes().to_vec()),
                append: vec![],
                existing: Existing::Overwrite,
                mode: None,
                owner: Owner::default(),
                writer: Writer::Replace,
                origin: String::new(),
            })],
            ..Plan::default()
        };
        assert_eq!(file("a").digest(), file("a").digest());
        assert_ne!(file("a").digest(), file("b").digest());
        assert_eq!(file("a").digest().len(), 64);
    }

    #[test]
    fn dry_run_listing_shows_sizes_never_contents() {
        let plan = Plan {
            users: vec![User {
                name: "core".into(),
                groups: vec!["a".into(), "b".into()],
                ssh_authorized_keys: vec!["k".into()],
                ..User::default()
            }],
            nodes: vec![
                Node::Directory(Directory {
                    path: "/d".into(),
                    mode: None,
                    owner: Owner::default(),
                    overwrite: false,
                    origin: String::new(),
                }),
                Node::File(File {
                    path: "/d/f".into(),
                    contents: Some(b"secret".to_vec()),
                    append: vec![b"x".to_vec()],
                    existing: Existing::Overwrite,
                    mode: Some(0o600),
                    owner: Owner::default(),
                    writer: Writer::Replace,
                    origin: String::new(),
                }),
                Node::Link(Link {
                    path: "/l".into(),
                    target: "/d/f".into(),
                    hard: false,
                    overwrite: false,
                    owner: Owner::default(),
                    origin: String::new(),
                }),
            ],
            units: vec![unit(true, None)],
            hostname: Some("n1".into()),
            ..Plan::default()
        };
        assert_eq!(
            plan.to_string(),
            "user      core keys=1 groups=a,b\n\
             directory /d default\n\
             file      /d/f 0600 6 bytes +1 appended\n\
             symlink   /l -> /d/f\n\
             unit      a.service masked dropins=0\n\
             hostname  n1\n"
        );
    }
}
