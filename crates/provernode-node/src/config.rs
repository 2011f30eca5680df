//! Where each setting of `run`, `broker` and `agent` comes from: a flag, a
//! `PROVERNODE_*` environment variable, a TOML config file, or the default,
//! in that order of precedence.
//!
//! The flags stay the one definition (clap, in [`crate::settings`]): the
//! file's keys are exactly their long names, each flag's environment
//! variable is derived from its name, and a file's values are checked by the
//! flag's own value parser. That is why this is not `figment`: a second,
//! serde-shaped description of the same settings would drift from the
//! flags, and serde errors cannot name the closest valid key.
//!
//! How: the command line is parsed once with every flag optional, which says
//! which flags the command line and the environment set; the file's other
//! keys are appended as `--key=value`; the result is parsed again, for real.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};

/// The roles a config file configures.
pub const ROLES: [&str; 3] = ["run", "broker", "agent"];

/// The config file read when `--config` (or `PROVERNODE_CONFIG`) names none,
/// if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/provernode/provernode.toml";

/// Keys renamed in a release: (old, new). The old name keeps working, with a
/// warning, for one release after the rename, then is removed from this list.
pub const RENAMED_KEYS: &[(&str, &str)] = &[];

/// Subcommands that take a role and its flags (`provernode config ROLE`,
/// `doctor ROLE`, `diagnose ROLE`): the role's settings resolve the same way.
const ROLE_COMMANDS: [&str; 3] = ["config", "doctor", "diagnose"];

/// Flags that are not settings: the config file's own path, and clap's.
const NOT_SETTINGS: [&str; 3] = ["config", "help", "version"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The command line itself is wrong (or asks for help): clap's message.
    #[error(transparent)]
    Clap(#[from] clap::Error),
    #[error(
        "cannot read the config file {path}: {error}; fix the path given by --config (or PROVERNODE_CONFIG)"
    )]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{path}: not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}:{line}: {message}")]
    Key {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    Flag,
    Env { name: String },
    File { path: PathBuf, line: usize },
    Default,
    Unset,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag => f.write_str("flag"),
            Source::Env { name } => write!(f, "env {name}"),
            Source::File { path, line } => write!(f, "file {}:{line}", path.display()),
            Source::Default => f.write_str("default"),
            Source::Unset => f.write_str("unset"),
        }
    }
}

/// One setting as the role will use it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Setting {
    /// The long flag, which is also the config file's key.
    pub key: String,
    /// The environment variable that sets it.
    pub env: String,
    /// The value, secrets redacted; `None` when unset.
    pub value: Option<String>,
    pub source: Source,
    pub secret: bool,
}

/// A role's effective configuration.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RoleConfig {
    pub role: String,
    /// The config file read, if any.
    pub file: Option<PathBuf>,
    pub settings: Vec<Setting>,
}

/// The command line resolved against the environment and the config file.
#[derive(Debug)]
pub struct Resolved {
    pub matches: ArgMatches,
    /// For `run`, `broker`, `agent` and `config ROLE`: the effective settings.
    pub role: Option<RoleConfig>,
    /// Renamed keys used in the file, to be logged once logging is up.
    pub warnings: Vec<String>,
}

/// The environment variable of a long flag: `--memory-budget-mib` is
/// `PROVERNODE_MEMORY_BUDGET_MIB`.
pub fn env_name(long: &str) -> String {
    format!("PROVERNODE_{}", long.replace('-', "_").to_uppercase())
}

/// Gives every flag of the roles (at the top level and under `config`) an
/// environment variable, where it has none of its own already.
pub fn with_env(cmd: Command) -> Command {
    for_each_role(cmd, |role| {
        role.mut_args(|arg| match (arg.get_long(), arg.get_env()) {
            (Some(long), None) if !NOT_SETTINGS.contains(&long) => {
                let name = env_name(long);
                arg.env(name)
            }
            _ => arg,
        })
    })
}

fn for_each_role(mut cmd: Command, f: impl Fn(Command) -> Command + Copy) -> Command {
    for role in ROLES {
        if cmd.find_subcommand(role).is_some() {
            cmd = cmd.mut_subcommand(role, f);
        }
    }
    for outer in ROLE_COMMANDS {
        if cmd.find_subcommand(outer).is_some() {
            cmd = cmd.mut_subcommand(outer, |c| for_each_role(c, f));
        }
    }
    cmd
}

/// The role a parsed command line runs (or `config ROLE` describes), with
/// its matches, and the path of subcommand names that leads to it.
fn role_of(matches: &ArgMatches) -> Option<(Vec<&str>, &ArgMatches)> {
    match matches.subcommand()? {
        (name, m) if ROLES.contains(&name) => Some((vec![name], m)),
        (outer, m) if ROLE_COMMANDS.contains(&outer) => match m.subcommand()? {
            (name, role) if ROLES.contains(&name) => Some((vec![outer, name], role)),
            _ => None,
        },
        _ => None,
    }
}

fn find_path<'a>(cmd: &'a Command, path: &[&str]) -> Option<&'a Command> {
    path.iter().try_fold(cmd, |c, name| c.find_subcommand(name))
}

/// Parses `argv` with `cmd` (already given its environment variables by
/// [`with_env`]), filling what neither a flag nor the environment set from
/// the config file: `--config FILE`, `PROVERNODE_CONFIG`, or
/// [`DEFAULT_CONFIG_PATH`] when it exists.
pub fn resolve(cmd: &Command, argv: Vec<OsString>) -> Result<Resolved, ConfigError> {
    resolve_with(cmd, argv, Path::new(DEFAULT_CONFIG_PATH), RENAMED_KEYS)
}

fn resolve_with(
    cmd: &Command,
    argv: Vec<OsString>,
    default_path: &Path,
    renamed: &[(&str, &str)],
) -> Result<Resolved, ConfigError> {
    // First pass with every flag optional: a required flag may be in the file.
    let relaxed = for_each_role(cmd.clone(), |c| c.mut_args(|a| a.required(false)));
    let first = match relaxed.clone().try_get_matches_from(argv.clone()) {
        Ok(m) => m,
        // The real command's message (help text included) is the one to show.
        Err(e) => return Err(cmd.clone().try_get_matches_from(argv).err().unwrap_or(e).into()),
    };
    let Some((path_names, role_matches)) = role_of(&first) else {
        return Ok(Resolved {
            matches: cmd.clone().try_get_matches_from(argv)?,
            role: None,
            warnings: Vec::new(),
        });
    };
    let role = path_names.last().copied().unwrap_or_default().to_owned();
    let role_cmd = find_path(cmd, &path_names)
        .ok_or_else(|| clap::Error::raw(clap::error::ErrorKind::InvalidSubcommand, "unknown role"))?;
    let globals: Vec<&clap::Arg> = cmd.get_arguments().filter(|a| a.is_global_set()).collect();
    let settings_args: Vec<&clap::Arg> = role_cmd
        .get_arguments()
        .chain(globals.iter().copied())
        .filter(|a| a.get_long().is_some_and(|l| !NOT_SETTINGS.contains(&l)))
        .collect();

    let explicit = role_matches
        .get_one::<PathBuf>("config")
        .or_else(|| first.get_one::<PathBuf>("config"))
        .cloned();
    let file = match explicit {
        Some(p) => Some(p),
        None if default_path.exists() => Some(default_path.to_owned()),
        None => None,
    };

    let mut extra: Vec<OsString> = Vec::new();
    let mut from_file: BTreeMap<String, usize> = BTreeMap::new();
    let mut warnings = Vec::new();
    if let Some(path) = &file {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.clone(),
            error,
        })?;
        let entries = parse_file(
            path,
            &text,
            &role,
            |r| role_keys(cmd, &path_names, r, &globals),
            renamed,
        )?;
        for entry in entries {
            if let Some(old) = &entry.renamed_from {
                warnings.push(format!(
                    "{}:{}: the key `{old}` is now `{}`; rename it, the old name will stop working in the next release",
                    path.display(),
                    entry.line,
                    entry.key
                ));
            }
            let Some(arg) = settings_args
                .iter()
                .find(|a| a.get_long() == Some(entry.key.as_str()))
            else {
                continue;
            };
            let id = arg.get_id().as_str();
            if matches!(
                role_matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            ) {
                continue;
            }
            let at = |message: String| ConfigError::Key {
                path: path.clone(),
                line: entry.line,
                message,
            };
            let words =
                file_value_words(arg, &entry.value).map_err(|m| at(format!("`{}` {m}", entry.key)))?;
            // Each value alone through the flag's own parser, so an error
            // names this line rather than the whole command line.
            for word in &words {
                let Some(word) = word else { continue };
                let mut trial: Vec<OsString> = vec!["provernode".into()];
                trial.extend(path_names.iter().map(OsString::from));
                trial.push(format!("--{}={word}", entry.key).into());
                relaxed
                    .clone()
                    .try_get_matches_from(trial)
                    .map_err(|e| at(format!("`{}` = {word:?}: {}", entry.key, clap_reason(&e))))?;
            }
            for word in words {
                extra.push(match word {
                    Some(w) => format!("--{}={w}", entry.key).into(),
                    None => format!("--{}", entry.key).into(),
                });
            }
            from_file.insert(id.to_owned(), entry.line);
        }
    }
    let mut full = argv;
    full.extend(extra);
    let matches = cmd.clone().try_get_matches_from(full)?;
    let (_, final_role) = role_of(&matches)
        .ok_or_else(|| clap::Error::raw(clap::error::ErrorKind::InvalidSubcommand, "role lost"))?;

    let settings = settings_args
        .iter()
        .map(|arg| {
            let id = arg.get_id().as_str();
            let long = arg.get_long().unwrap_or(id);
            let secret = arg.is_hide_env_values_set();
            let value = final_role.get_raw(id).map(|raw| {
                let words: Vec<String> = raw.map(|v| v.to_string_lossy().into_owned()).collect();
                if secret {
                    words
                        .iter()
                        .map(|w| redact(long, w))
                        .collect::<Vec<_>>()
                        .join(",")
                } else {
                    words.join(",")
                }
            });
            let source = match (from_file.get(id), final_role.value_source(id)) {
                (Some(line), _) => Source::File {
                    path: file.clone().unwrap_or_default(),
                    line: *line,
                },
                (None, Some(ValueSource::CommandLine)) => Source::Flag,
                (None, Some(ValueSource::EnvVariable)) => Source::Env {
                    name: arg
                        .get_env()
                        .map(|e| e.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                },
                (None, Some(ValueSource::DefaultValue)) => Source::Default,
                _ => Source::Unset,
            };
            Setting {
                key: long.to_owned(),
                env: arg
                    .get_env()
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_else(|| env_name(long)),
                value,
                source,
                secret,
            }
        })
        .collect();
    Ok(Resolved {
        matches,
        role: Some(RoleConfig { role, file, settings }),
        warnings,
    })
}

/// The long flags of a role (with the global ones), or `None` for no role.
fn role_keys(cmd: &Command, path_names: &[&str], role: &str, globals: &[&clap::Arg]) -> Option<Vec<String>> {
    let mut path: Vec<&str> = path_names.to_vec();
    path.pop();
    path.push(role);
    let role_cmd = find_path(cmd, &path)?;
    Some(
        role_cmd
            .get_arguments()
            .chain(globals.iter().copied())
            .filter_map(|a| a.get_long())
            .filter(|l| !NOT_SETTINGS.contains(l))
            .map(str::to_owned)
            .collect(),
    )
}

/// What clap says is wrong with a value, without its "error:" prefix and
/// usage text, which would point at a command line the user did not type.
fn clap_reason(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.trim_start_matches("error: ").to_owned()
}

/// A secret for display: a database URL keeps everything but its password;
/// anything else is replaced whole.
pub fn redact(key: &str, value: &str) -> String {
    if key.contains("database-url") {
        if let Some((scheme, rest)) = value.split_once("://") {
            if let Some((userinfo, host)) = rest.rsplit_once('@') {
                let user = userinfo.split(':').next().unwrap_or_default();
                return format!("{scheme}://{user}:[redacted]@{host}");
            }
            return value.to_owned();
        }
    }
    "[redacted]".to_owned()
}

/// One key of the file that applies to the role being run.
#[derive(Debug)]
struct Entry {
    key: String,
    renamed_from: Option<String>,
    value: FileValue,
    line: usize,
}

#[derive(Debug)]
enum FileValue {
    Bool(bool),
    Scalar(String),
    List(Vec<String>),
}

/// The command-line words a file value stands for: `Some(v)` is `--key=v`,
/// `None` is a bare `--key` (a switch set to true).
fn file_value_words(arg: &clap::Arg, value: &FileValue) -> Result<Vec<Option<String>>, String> {
    let switch = matches!(arg.get_action(), ArgAction::SetTrue);
    let many = matches!(arg.get_action(), ArgAction::Append);
    match value {
        FileValue::Bool(b) if switch => Ok(if *b { vec![None] } else { vec![] }),
        _ if switch => Err("is a switch: give true or false".into()),
        FileValue::Bool(_) => Err("takes a value, not true or false".into()),
        FileValue::Scalar(s) => Ok(vec![Some(s.clone())]),
        FileValue::List(items) if many => Ok(items.iter().cloned().map(Some).collect()),
        FileValue::List(_) => Err("takes one value, not a list".into()),
    }
}

/// Reads the file's keys for `role`. Top-level keys apply to the role being
/// run (those of other roles only are skipped); the tables `[run]`, `[broker]` and `[agent]` hold each role's own
/// keys, and only the role's table applies (over the top level). Every key
/// is checked against its role's flags, so a misspelling anywhere is found.
fn parse_file(
    path: &Path,
    text: &str,
    role: &str,
    keys_of: impl Fn(&str) -> Option<Vec<String>>,
    renamed: &[(&str, &str)],
) -> Result<Vec<Entry>, ConfigError> {
    let doc = toml_edit::ImDocument::parse(text).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        message: e.to_string().trim().to_owned(),
    })?;
    let line_of = |span: Option<std::ops::Range<usize>>| {
        span.map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(1)
    };
    let mut top = Vec::new();
    let mut own = Vec::new();
    for (key, item) in doc.as_table().iter() {
        let key_line = line_of(doc.as_table().get_key_value(key).and_then(|(k, _)| k.span()));
        if let Some(table) = item.as_table() {
            let Some(valid) = keys_of(key).filter(|_| ROLES.contains(&key)) else {
                return Err(ConfigError::Key {
                    path: path.to_owned(),
                    line: key_line,
                    message: format!(
                        "unknown table [{key}]; the tables are [run], [broker] and [agent]{}",
                        closest(key, ROLES.iter().map(|r| r.to_string()))
                            .map(|c| format!(" (did you mean [{c}]?)"))
                            .unwrap_or_default()
                    ),
                });
            };
            for (k, v) in table.iter() {
                let line = line_of(table.get_key_value(k).and_then(|(kk, _)| kk.span()));
                let entry = entry(path, k, v, line, &valid, key, renamed)?;
                if key == role {
                    own.push(entry);
                }
            }
        } else {
            // A top-level key of another role is not a typo: one file may
            // serve a machine's node and agent alike.
            let valid = keys_of(role).unwrap_or_default();
            let elsewhere = ROLES
                .iter()
                .filter(|r| **r != role)
                .any(|r| keys_of(r).is_some_and(|k| k.iter().any(|k| k == key)));
            if !elsewhere || valid.iter().any(|k| k == key) {
                top.push(entry(path, key, item, key_line, &valid, role, renamed)?);
            }
        }
    }
    // The role's own table wins over the top level.
    top.retain(|t: &Entry| !own.iter().any(|o| o.key == t.key));
    top.extend(own);
    Ok(top)
}

fn entry(
    path: &Path,
    key: &str,
    item: &toml_edit::Item,
    line: usize,
    valid: &[String],
    role: &str,
    renamed: &[(&str, &str)],
) -> Result<Entry, ConfigError> {
    let err = |message: String| ConfigError::Key {
        path: path.to_owned(),
        line,
        message,
    };
    let (name, renamed_from) = match renamed.iter().find(|(old, _)| *old == key) {
        Some((old, new)) => ((*new).to_owned(), Some((*old).to_owned())),
        None => (key.to_owned(), None),
    };
    if !valid.contains(&name) {
        let hint = closest(key, valid.iter().cloned())
            .map(|c| format!("; the closest valid key is `{c}`"))
            .unwrap_or_default();
        return Err(err(format!(
            "unknown key `{key}` for `provernode {role}`{hint} (the keys are the long flags of `provernode {role} --help`)"
        )));
    }
    let scalar = |v: &toml_edit::Value| -> Result<FileValue, String> {
        Ok(match v {
            toml_edit::Value::String(s) => FileValue::Scalar(s.value().clone()),
            toml_edit::Value::Integer(i) => FileValue::Scalar(i.value().to_string()),
            toml_edit::Value::Float(f) => FileValue::Scalar(f.value().to_string()),
            toml_edit::Value::Boolean(b) => FileValue::Bool(*b.value()),
            toml_edit::Value::Datetime(_) => return Err("a date is not a value of any setting".into()),
            toml_edit::Value::Array(_) | toml_edit::Value::InlineTable(_) => {
                return Err("nested lists and tables are not values of any setting".into())
            }
        })
    };
    let value = match item.as_value() {
        Some(toml_edit::Value::Array(items)) => {
            let mut list = Vec::new();
            for v in items.iter() {
                match scalar(v).map_err(|m| err(format!("`{key}`: {m}")))? {
                    FileValue::Scalar(s) => list.push(s),
                    FileValue::Bool(b) => list.push(b.to_string()),
                    FileValue::List(_) => {}
                }
            }
            FileValue::List(list)
        }
        Some(v) => scalar(v).map_err(|m| err(format!("`{key}`: {m}")))?,
        None => return Err(err(format!("`{key}` must be a value, not a table"))),
    };
    Ok(Entry {
        key: name,
        renamed_from,
        value,
        line,
    })
}

/// The valid key most like `key`, if any is reasonably close.
fn closest(key: &str, valid: impl Iterator<Item = String>) -> Option<String> {
    valid
        .map(|v| {
            // Jaro-Winkler rewards a shared prefix (`workrs`); Damerau-
            // Levenshtein catches swapped letters in short names (`rnu`).
            let score = strsim::jaro_winkler(key, &v).max(strsim::normalized_damerau_levenshtein(key, &v));
            (score, v)
        })
        .filter(|(score, _)| *score > 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    fn cli() -> Command {
        let role = |name: &'static str| {
            let cmd = Command::new(name)
                .arg(
                    Arg::new("workers")
                        .long("workers")
                        .value_parser(clap::value_parser!(u32))
                        .default_value("2"),
                )
                .arg(Arg::new("listen").long("listen").default_value("127.0.0.1:7878"))
                .arg(
                    Arg::new("probe")
                        .long("precedence-probe")
                        .default_value("default"),
                )
                .arg(
                    Arg::new("trust_agents")
                        .long("trust-agents")
                        .action(ArgAction::SetTrue),
                )
                .arg(
                    Arg::new("client_tokens")
                        .long("client-token")
                        .action(ArgAction::Append)
                        .hide_env_values(true),
                );
            if name == "run" {
                return cmd;
            }
            cmd.arg(
                Arg::new("database_url")
                    .long("database-url")
                    .env("PROVERNODE_DATABASE_URL_TEST_UNUSED")
                    .hide_env_values(true),
            )
        };
        let broker = role("broker").mut_arg("database_url", |a| a.required(true));
        with_env(
            Command::new("provernode")
                .arg(
                    Arg::new("config")
                        .long("config")
                        .global(true)
                        .value_parser(clap::value_parser!(PathBuf)),
                )
                .subcommand(role("run"))
                .subcommand(broker.clone())
                .subcommand(role("agent"))
                .subcommand(Command::new("config").subcommand(role("run")).subcommand(broker))
                .subcommand(Command::new("status")),
        )
    }

    fn argv(words: &[&str]) -> Vec<OsString> {
        std::iter::once("provernode")
            .chain(words.iter().copied())
            .map(Into::into)
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    fn resolve_file(words: &[&str], text: &str) -> Result<Resolved, ConfigError> {
        let f = file(text);
        let mut w = words.to_vec();
        let path = f.path().to_str().unwrap().to_owned();
        w.extend(["--config", &path]);
        resolve_with(
            &cli(),
            argv(&w),
            Path::new("/nonexistent"),
            &[("worker-count", "workers")],
        )
    }

    fn setting<'a>(r: &'a Resolved, key: &str) -> &'a Setting {
        r.role
            .as_ref()
            .unwrap()
            .settings
            .iter()
            .find(|s| s.key == key)
            .unwrap()
    }

    #[test]
    fn env_names_follow_the_long_flag() {
        assert_eq!(env_name("memory-budget-mib"), "PROVERNODE_MEMORY_BUDGET_MIB");
        let cmd = cli();
        let run = cmd.find_subcommand("run").unwrap();
        let listen = run.get_arguments().find(|a| a.get_id() == "listen").unwrap();
        assert_eq!(listen.get_env().unwrap(), "PROVERNODE_LISTEN");
        // A flag's own variable is kept.
        let broker = cmd.find_subcommand("broker").unwrap();
        let db = broker
            .get_arguments()
            .find(|a| a.get_id() == "database_url")
            .unwrap();
        assert_eq!(db.get_env().unwrap(), "PROVERNODE_DATABASE_URL_TEST_UNUSED");
        // Under `config` too.
        let nested = cmd
            .find_subcommand("config")
            .unwrap()
            .find_subcommand("run")
            .unwrap();
        assert!(nested.get_arguments().all(|a| a.get_env().is_some()));
    }

    #[test]
    fn a_file_fills_what_no_flag_sets_and_a_flag_wins() {
        let r = resolve_file(
            &["run", "--listen", "0.0.0.0:1"],
            "workers = 7\nlisten = \"127.0.0.1:9\"\n",
        )
        .unwrap();
        let (_, m) = r.matches.subcommand().unwrap();
        assert_eq!(m.get_one::<u32>("workers"), Some(&7));
        assert_eq!(m.get_one::<String>("listen").unwrap(), "0.0.0.0:1");
        assert!(matches!(
            setting(&r, "workers").source,
            Source::File { line: 1, .. }
        ));
        assert_eq!(setting(&r, "listen").source, Source::Flag);
        assert_eq!(setting(&r, "trust-agents").source, Source::Default);
    }

    #[test]
    fn precedence_is_flag_then_environment_then_file_then_default() {
        // Only this test reads PROVERNODE_PRECEDENCE_PROBE.
        std::env::set_var("PROVERNODE_PRECEDENCE_PROBE", "env");
        let text = "precedence-probe = \"file\"\nlisten = \"127.0.0.1:1\"\n";
        let r = resolve_file(&["run"], text).unwrap();
        let (_, m) = r.matches.subcommand().unwrap();
        assert_eq!(m.get_one::<String>("probe").unwrap(), "env");
        assert_eq!(
            setting(&r, "precedence-probe").source,
            Source::Env {
                name: "PROVERNODE_PRECEDENCE_PROBE".into()
            }
        );
        let r = resolve_file(&["run", "--precedence-probe", "flag"], text).unwrap();
        let (_, m) = r.matches.subcommand().unwrap();
        assert_eq!(m.get_one::<String>("probe").unwrap(), "flag");
        std::env::remove_var("PROVERNODE_PRECEDENCE_PROBE");
        let r = resolve_file(&["run"], text).unwrap();
        let (_, m) = r.matches.subcommand().unwrap();
        assert_eq!(m.get_one::<String>("probe").unwrap(), "file");
        let r = resolve_file(&["run"], "").unwrap();
        let (_, m) = r.matches.subcommand().unwrap();
        assert_eq!(m.get_one::<String>("probe").unwrap(), "default");
    }

    #[test]
    fn the_roles_table_wins_over_the_top_level_and_other_tables_are_checked() {
        let text = "workers = 3\n[run]\nworkers = 5\ntrust-agents = true\n[broker]\nworkers = 9\n";
        let r = resolve_file(&["run"], text).unwrap();
        let (_, m) = r.matches.subcommand().unwrap();
        assert_eq!(m.get_one::<u32>("workers"), Some(&5));
        assert!(m.get_flag("trust_agents"));
        let e = resolve_file(&["run"], "[broker]\nwrokers = 9\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(":2:") && e.contains("`wrokers`") && e.contains("`workers`"),
            "{e}"
        );
        // A top-level key only another role has is skipped, not refused.
        let r = resolve_file(&["run"], "database-url = \"postgres://x\"\n").unwrap();
        assert!(r.role.unwrap().settings.iter().all(|s| s.source != Source::Flag));
        let e = resolve_file(&["run"], "[run]\nwrokers = 9\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(":2:") && e.contains("`wrokers`") && e.contains("`workers`"),
            "{e}"
        );
    }

    #[test]
    fn a_required_flag_may_come_from_the_file() {
        let r = resolve_file(&["broker"], "database-url = \"postgres://u:hunter2@db/q\"\n").unwrap();
        let s = setting(&r, "database-url");
        assert_eq!(s.value.as_deref(), Some("postgres://u:[redacted]@db/q"));
        assert!(!format!("{:?}", r.role).contains("hunter2"));
        // Without it, clap's own error.
        assert!(matches!(
            resolve_with(&cli(), argv(&["broker"]), Path::new("/nonexistent"), &[]),
            Err(ConfigError::Clap(_))
        ));
    }

    #[test]
    fn unknown_keys_name_the_file_line_and_closest_key() {
        let e = resolve_file(&["run"], "# comment\n\nworkrs = 4\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":3:"), "{e}");
        assert!(
            e.contains("unknown key `workrs`") && e.contains("closest valid key is `workers`"),
            "{e}"
        );
        let e = resolve_file(&["run"], "[rnu]\nworkers = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[rnu]") && e.contains("did you mean [run]"), "{e}");
    }

    #[test]
    fn wrong_types_are_errors_naming_the_key_and_line() {
        for (text, want) in [
            ("workers = \"four\"\n", "`workers` = \"four\""),
            ("workers = -1\n", "`workers`"),
            ("workers = true\n", "not true or false"),
            ("trust-agents = 1\n", "is a switch"),
            ("workers = [1, 2]\n", "not a list"),
        ] {
            let e = resolve_file(&["run"], text).unwrap_err().to_string();
            assert!(e.contains(":1:") && e.contains(want), "{text}: {e}");
        }
        let e = resolve_file(&["run"], "workers = \n").unwrap_err().to_string();
        assert!(e.contains("not valid TOML"), "{e}");
    }

    #[test]
    fn lists_become_repeated_flags_and_secrets_are_redacted() {
        let r = resolve_file(&["run"], "client-token = [\"aa\", \"bb\"]\n").unwrap();
        let (_, m) = r.matches.subcommand().unwrap();
        let tokens: Vec<&String> = m.get_many("client_tokens").unwrap().collect();
        assert_eq!(tokens, ["aa", "bb"]);
        assert_eq!(
            setting(&r, "client-token").value.as_deref(),
            Some("[redacted],[redacted]")
        );
    }

    #[test]
    fn renamed_keys_work_with_a_warning() {
        let r = resolve_file(&["run"], "worker-count = 6\n").unwrap();
        let (_, m) = r.matches.subcommand().unwrap();
        assert_eq!(m.get_one::<u32>("workers"), Some(&6));
        assert!(
            r.warnings[0].contains("`worker-count` is now `workers`"),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn config_role_describes_the_same_settings() {
        let r = resolve_file(&["config", "run"], "workers = 8\n").unwrap();
        let role = r.role.unwrap();
        assert_eq!(role.role, "run");
        let w = role.settings.iter().find(|s| s.key == "workers").unwrap();
        assert_eq!(w.value.as_deref(), Some("8"));
    }

    #[test]
    fn other_commands_ignore_the_file_and_a_missing_file_is_an_error() {
        let r = resolve_with(&cli(), argv(&["status"]), Path::new("/nonexistent"), &[]).unwrap();
        assert!(r.role.is_none());
        let e = resolve_with(
            &cli(),
            argv(&["run", "--config", "/nonexistent/x.toml"]),
            Path::new("/x"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/nonexistent/x.toml"), "{e}");
    }

    #[test]
    fn a_default_file_is_read_when_it_exists() {
        let f = file("workers = 11\n");
        let r = resolve_with(&cli(), argv(&["run"]), f.path(), &[]).unwrap();
        let (_, m) = r.matches.subcommand().unwrap();
        assert_eq!(m.get_one::<u32>("workers"), Some(&11));
    }
}
