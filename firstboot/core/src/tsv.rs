//! The tab-separated data files kiln compiles in (`kubeadm-images.tsv`,
//! `k8s-binary-sha256.tsv`): `#` comment lines, then rows of a fixed number of fields.

/// The rows of `text` with exactly `N` tab-separated fields (trimmed), skipping comments and
/// blank lines; an error names the first bad line (1-based).
pub fn rows<const N: usize>(text: &str) -> Result<Vec<[&str; N]>, String> {
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        let row = <[&str; N]>::try_from(fields)
            .map_err(|_| format!("line {}: want {N} tab-separated fields", n + 1))?;
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blank_lines_and_field_counts() {
        let text = "# head\nv1\ta\tb\n\nv2\tc\td\n";
        assert_eq!(
            rows::<3>(text).unwrap(),
            [["v1", "a", "b"], ["v2", "c", "d"]]
        );
        assert_eq!(
            rows::<2>(text).unwrap_err(),
            "line 2: want 2 tab-separated fields"
        );
    }
}
