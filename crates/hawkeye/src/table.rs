//! Plain-text tables for the command line: columns padded to their widest
//! cell, two spaces apart.

/// Prints `header` and `rows`, each column as wide as its widest cell.
pub fn print(header: &[&str], rows: Vec<Vec<String>>) {
    let widths: Vec<usize> = header
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, String::len))
                .max()
                .unwrap_or(0)
                .max(c.len())
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(&header.iter().map(|c| c.to_string()).collect::<Vec<_>>());
    for r in &rows {
        line(r);
    }
}
