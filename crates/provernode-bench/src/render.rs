//! Rendering: the Markdown table of rows (machines and settings numbered in
//! legends), spliced between its markers in a document.

use std::collections::{BTreeMap, BTreeSet};

use crate::Row;

/// Table order: program, input size (n=100 after n=50), backend, kind,
/// settings (then the machine, see [`Machines`]).
fn order(row: &Row) -> (String, u64, usize, String, BTreeMap<String, String>) {
    let backend = ["trace", "risc0", "sp1"]
        .iter()
        .position(|b| *b == row.backend)
        .unwrap_or(usize::MAX);
    let size = row
        .input
        .split_once('=')
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(u64::MAX);
    (
        row.program.clone(),
        size,
        backend,
        row.proof_kind.clone(),
        row.settings.clone(),
    )
}

/// The non-default settings of a table, lettered A, B, … in a stable
/// order: a kind cell says `composite (settings A)` and a legend under the
/// tables lists each, so a long list (SP1's worker pools) does not widen
/// every row.
pub(crate) struct SettingsLegend<'a>(Vec<&'a BTreeMap<String, String>>);

impl<'a> SettingsLegend<'a> {
    /// The legend of the rows whose settings are `settings`.
    pub(crate) fn of(settings: impl IntoIterator<Item = &'a BTreeMap<String, String>>) -> Self {
        let distinct: BTreeSet<&BTreeMap<String, String>> =
            settings.into_iter().filter(|s| !s.is_empty()).collect();
        SettingsLegend(distinct.into_iter().collect())
    }

    fn letter(i: usize) -> String {
        // 26 letters, then A1, B1, …: far more variants than a table holds.
        let (round, at) = (i / 26, i % 26);
        let letter = char::from(b'A' + at as u8);
        if round == 0 {
            letter.to_string()
        } else {
            format!("{letter}{round}")
        }
    }

    pub(crate) fn kind(&self, proof_kind: &str, settings: &BTreeMap<String, String>) -> String {
        match self.0.iter().position(|s| *s == settings) {
            Some(i) => format!("{proof_kind} (settings {})", Self::letter(i)),
            None => proof_kind.to_owned(),
        }
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        for (i, settings) in self.0.iter().enumerate() {
            let list: Vec<String> = settings.iter().map(|(k, v)| format!("`{k}={v}`")).collect();
            out.push_str(&format!("\nSettings {}: {}.\n", Self::letter(i), list.join(", ")));
        }
        out
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn human_seconds(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.1} s")
    }
}

/// Seconds (as `f64` bits) measured in one or more runs: the one value, or
/// the range and how many runs; none where another proof kind paid it.
fn seconds_range(bits: &BTreeSet<u64>) -> String {
    let mut values: Vec<f64> = bits.iter().map(|b| f64::from_bits(*b)).collect();
    values.sort_by(f64::total_cmp);
    match values.as_slice() {
        [] => "paid by another kind".into(),
        [one] => human_seconds(*one),
        [low, .., high] => {
            let (low, high) = (human_seconds(*low), human_seconds(*high));
            // Runs that differ below the display precision read as one value.
            if low == high {
                format!("{low} ({} runs)", values.len())
            } else {
                format!("{low}–{high} ({} runs)", values.len())
            }
        }
    }
}

/// The machines of a table, numbered by how many of its rows each measured
/// (the machine of most rows is 1; a tie goes by name), so adding a few rows
/// from another machine does not renumber the rest. With one machine the
/// table says so under it; with several, a `machine` column says where each
/// row was measured and a legend says what each machine is.
/// The batch table (`batch.rs`) numbers its machines the same way.
pub(crate) struct Machines<'a>(Vec<&'a str>);

impl<'a> Machines<'a> {
    /// `hosts`: every row's host, once per row.
    pub(crate) fn of(hosts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for host in hosts {
            *counts.entry(host).or_default() += 1;
        }
        let mut hosts: Vec<(&str, usize)> = counts.into_iter().collect();
        hosts.sort_by_key(|(host, count)| (std::cmp::Reverse(*count), *host));
        Machines(hosts.into_iter().map(|(host, _)| host).collect())
    }

    /// Machine 1: the host of most rows (what a plot of one machine shows).
    pub(crate) fn first(&self) -> Option<&'a str> {
        self.0.first().copied()
    }

    pub(crate) fn several(&self) -> bool {
        self.0.len() > 1
    }

    /// The extra header cells, separator cells and row cell: empty for one machine.
    pub(crate) fn header(&self) -> &'static str {
        if self.several() {
            " machine |"
        } else {
            ""
        }
    }

    pub(crate) fn separator(&self) -> &'static str {
        if self.several() {
            "---|"
        } else {
            ""
        }
    }

    /// The machine's place in the legend (every row's host is in it).
    pub(crate) fn index(&self, host: &str) -> usize {
        self.0.iter().position(|h| *h == host).unwrap_or(usize::MAX)
    }

    pub(crate) fn cell(&self, index: usize) -> String {
        if self.several() {
            format!(" {} |", index.saturating_add(1))
        } else {
            String::new()
        }
    }

    pub(crate) fn render(&self) -> String {
        match self.0.as_slice() {
            [] => String::new(),
            [one] => format!("\nMeasured on: {one}.\n"),
            several => several
                .iter()
                .enumerate()
                .map(|(i, host)| format!("\nMachine {}: {host}.\n", i + 1))
                .collect(),
        }
    }
}

/// The results as Markdown: one table of proofs, one of fixed costs.
pub fn markdown(rows: &[Row]) -> String {
    let mut rows: Vec<&Row> = rows.iter().collect();
    let machines = Machines::of(rows.iter().map(|r| r.host.as_str()));
    rows.sort_by_key(|r| (order(r), machines.index(&r.host)));
    let legend = SettingsLegend::of(rows.iter().map(|r| &r.settings));
    let mut out = String::new();
    out.push_str(&format!(
        "| program | input | backend | kind |{} cycles | prove | verify (avg) | proof size | peak memory |\n",
        machines.header()
    ));
    out.push_str(&format!(
        "|---|---|---|---|{}---:|---:|---:|---:|---:|\n",
        machines.separator()
    ));
    for r in &rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} |{} {} | {} | {} (×{}) | {} | {} |\n",
            r.program,
            r.input,
            r.backend,
            legend.kind(&r.proof_kind, &r.settings),
            machines.cell(machines.index(&r.host)),
            r.cycles,
            human_seconds(r.prove_seconds),
            human_seconds(r.verify_seconds_avg),
            r.verify_runs,
            human_bytes(r.proof_bytes),
            r.peak_rss_bytes.map_or_else(|| "n/a".into(), human_bytes),
        ));
    }
    // Fixed costs: one line per (backend, kind, settings, machine, program),
    // over every run that paid them (rows of one run share its figures):
    // start-up varies from run to run, so the table gives the range.
    type Measured = (BTreeSet<u64>, BTreeSet<u64>);
    type FixedKey<'a> = (
        usize,
        &'a str,
        &'a str,
        &'a BTreeMap<String, String>,
        usize,
        &'a str,
    );
    let mut fixed: BTreeMap<FixedKey, Measured> = BTreeMap::new();
    for r in &rows {
        let key = (
            order(r).2,
            r.backend.as_str(),
            r.proof_kind.as_str(),
            &r.settings,
            machines.index(&r.host),
            r.program.as_str(),
        );
        let (startups, setups) = fixed.entry(key).or_default();
        startups.extend(r.startup_seconds.map(f64::to_bits));
        setups.extend(r.setup_seconds.map(f64::to_bits));
    }
    out.push_str(&format!(
        "\n| backend | kind |{} program | start-up (per process) | set-up (per program) |\n",
        machines.header()
    ));
    out.push_str(&format!("|---|---|{}---|---:|---:|\n", machines.separator()));
    for ((_, backend, kind, settings, machine, program), (startups, setups)) in &fixed {
        out.push_str(&format!(
            "| {backend} | {} |{} {program} | {} | {} |\n",
            legend.kind(kind, settings),
            machines.cell(*machine),
            seconds_range(startups),
            seconds_range(setups)
        ));
    }
    out.push_str(&legend.render());
    out.push_str(&machines.render());
    out
}

/// Marks the part of a document that `provernode bench --markdown` rewrites.
pub const TABLE_BEGIN: &str = "<!-- provernode bench: begin (generated; edit around it) -->";
pub const TABLE_END: &str = "<!-- provernode bench: end -->";

/// `document` with the text between the markers replaced by `table`; the
/// table alone, between markers, when the document has none (a new file).
pub fn splice(document: Option<&str>, table: &str) -> String {
    splice_between(document, table, TABLE_BEGIN, TABLE_END)
}

/// `document` with the text between `begin` and `end` replaced by `table`
/// (appended with its markers when the document has none).
pub(crate) fn splice_between(document: Option<&str>, table: &str, begin: &str, end: &str) -> String {
    let block = format!("{begin}\n{table}{end}\n");
    let Some(doc) = document else {
        return block;
    };
    match (doc.find(begin), doc.find(end)) {
        (Some(a), Some(b)) if a < b => {
            let after = &doc[b + end.len()..];
            format!(
                "{}{block}{}",
                &doc[..a],
                after.strip_prefix('\n').unwrap_or(after)
            )
        }
        _ => format!("{doc}\n{block}"),
    }
}
