//! cloud-config `bootcmd` and `runcmd`: each item a shell string (`sh -c`) or an argv list.
//! Recorded in the plan; only the boot-time run (or `apply --run-commands`) executes them.

use serde_yaml_ng::Value;

use super::scalar;
use crate::plan::{Command, Phase};
use crate::userdata::error::{Result, UserDataError};

/// Compiles the list under `key`.
pub fn compile(value: &Value, key: &str, phase: Phase) -> Result<Vec<Command>> {
    let items = value
        .as_sequence()
        .ok_or_else(|| UserDataError::new(key, "expected a list of commands"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = format!("{key}[{i}]");
            let argv = match item {
                Value::Sequence(words) => words
                    .iter()
                    .enumerate()
                    .map(|(j, w)| scalar(w, &format!("{field}[{j}]")))
                    .collect::<Result<Vec<_>>>()?,
                other => vec!["sh".into(), "-c".into(), scalar(other, &field)?],
            };
            if argv.is_empty() {
                return Err(UserDataError::new(field, "empty command"));
            }
            Ok(Command {
                phase,
                argv,
                script: None,
                origin: field,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_and_argv_forms() {
        let v: Value = serde_yaml_ng::from_str(
            "- echo hi > /tmp/x\n- [kubeadm, init, --config, /run/kubeadm/kubeadm.yaml]\n",
        )
        .unwrap();
        let cmds = compile(&v, "runcmd", Phase::Run).unwrap();
        assert_eq!(cmds[0].argv, ["sh", "-c", "echo hi > /tmp/x"]);
        assert_eq!(cmds[1].argv[0], "kubeadm");
        assert_eq!(cmds[1].origin, "runcmd[1]");
        let bad: Value = serde_yaml_ng::from_str("- []\n").unwrap();
        assert_eq!(
            compile(&bad, "runcmd", Phase::Run).unwrap_err().field,
            "runcmd[0]"
        );
    }
}
