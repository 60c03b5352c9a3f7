//! JSON laid out the way the REPL prints it (Lean's `Json.pretty`, width 80): whatever fits
//! stays on one line, otherwise objects and arrays break one entry per line, and a field
//! whose value does not fit puts the value on the next line, whatever its type (Lean's
//! `Json.render` makes each field `group(key ++ ":" ++ line ++ value)`; repl
//! `test/self_proof_apply_check.expected.out` shows a long string moved down). Object keys
//! come in reverse order of their names, as Lean's `Json` object (a sorted tree) renders
//! them: every repl `test/*.expected.out` shows it
//! (`{"proofStatus": ..., "proofState": ..., "goals": ...}`).

use serde_json::Value;

const WIDTH: usize = 80;

pub fn pretty(value: &Value) -> String {
    render(value, 0)
}

/// One-line form with Lean's separators (`", "`, `": "`).
fn compact(value: &Value) -> String {
    match value {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(compact).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(fields) => {
            let fields: Vec<String> = lean_order(fields)
                .map(|(k, v)| format!("{}: {}", Value::from(k.as_str()), compact(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        scalar => scalar.to_string(),
    }
}

fn lean_order(fields: &serde_json::Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
    let mut fields: Vec<(&String, &Value)> = fields.iter().collect();
    fields.sort_by(|a, b| b.0.cmp(a.0));
    fields.into_iter()
}

fn fits(indent: usize, text: &str) -> bool {
    indent + text.chars().count() <= WIDTH
}

fn render(value: &Value, indent: usize) -> String {
    let one_line = compact(value);
    if fits(indent, &one_line) {
        return one_line;
    }
    let separator = format!(",\n{}", " ".repeat(indent + 1));
    match value {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(|v| render(v, indent + 1)).collect();
            format!("[{}]", items.join(&separator))
        }
        Value::Object(fields) => {
            let fields: Vec<String> = lean_order(fields)
                .map(|(k, v)| field(k, v, indent + 1))
                .collect();
            format!("{{{}}}", fields.join(&separator))
        }
        _ => one_line,
    }
}

fn field(key: &str, value: &Value, indent: usize) -> String {
    let key = format!("{}:", Value::from(key));
    let inline = format!("{key} {}", compact(value));
    if fits(indent, &inline) {
        return inline;
    }
    format!("{key}\n{}{}", " ".repeat(indent), render(value, indent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_stay_on_one_line_long_ones_break() {
        let short = serde_json::json!({"goals": [], "proofState": 3, "proofStatus": "Completed"});
        // repl test/proof_step.expected.out, last answer.
        assert_eq!(
            pretty(&short),
            "{\"proofStatus\": \"Completed\", \"proofState\": 3, \"goals\": []}"
        );
        let long = serde_json::json!({"env": 0, "sorries": [{"proofState": 0, "goal": "x : Nat\n⊢ x = x", "pos": {"line": 1, "column": 43}, "endPos": {"line": 1, "column": 48}}]});
        let text = pretty(&long);
        assert!(text.lines().count() > 2, "{text}");
        assert!(text.lines().all(|l| !l.trim().is_empty()));
        assert!(text.contains("\"sorries\":\n ["), "{text}");
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), long);
    }
}
