//! The leads export (`GET /api/v4/leads/export.csv`): one row per lead with its stage,
//! contacts, source and visits, written as RFC 4180 CSV. A cell that a spreadsheet would
//! read as a formula (`=` or `@` first, or `+`/`-` and not a number) gets a leading `'`.

use super::source::Source;
use super::stats::date_of;
use super::time::Millis;

/// The columns, in order.
pub const HEADER: [&str; 17] = [
    "id",
    "name",
    "pipeline",
    "stage",
    "contact_name",
    "contact_phone",
    "contact_email",
    "created_at",
    "first_touch_utm_source",
    "first_touch_utm_medium",
    "first_touch_utm_campaign",
    "first_touch_referrer",
    "last_touch_utm_source",
    "last_touch_utm_medium",
    "last_touch_utm_campaign",
    "visits",
    "last_visit_at",
];

/// `2026-12-02T18:30:05Z` of a time in milliseconds.
pub fn iso_time(at: Millis) -> String {
    let secs = at.max(0) / 1000;
    let (day, rest) = (secs / 86_400, secs % 86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        date_of(day as u32),
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The source cells of a touch: utm_source, utm_medium, utm_campaign (and the referrer
/// when asked).
pub fn touch_cells(touch: Option<&Source>, referrer: bool) -> Vec<String> {
    let utm = touch.map(|t| &t.utm);
    let mut cells = vec![
        utm.and_then(|u| u.utm_source.clone()).unwrap_or_default(),
        utm.and_then(|u| u.utm_medium.clone()).unwrap_or_default(),
        utm.and_then(|u| u.utm_campaign.clone()).unwrap_or_default(),
    ];
    if referrer {
        cells.push(touch.map(|t| t.referrer.clone()).unwrap_or_default());
    }
    cells
}

/// Appends one CSV record (CRLF-terminated).
pub fn write_row<S: AsRef<str>>(out: &mut String, cells: &[S]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let cell = cell.as_ref();
        let guarded = is_formula(cell);
        if guarded || cell.contains([',', '"', '\r', '\n']) {
            out.push('"');
            if guarded {
                out.push('\'');
            }
            out.push_str(&cell.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(cell);
        }
    }
    out.push_str("\r\n");
}

/// `=1+1`, `@SUM(…)`, `-A1` — but not `+7 900 123-45-67` or `-5`.
fn is_formula(cell: &str) -> bool {
    let numeric = |c: char| c.is_ascii_digit() || " ()-+.".contains(c);
    cell.starts_with(['=', '@']) || (cell.starts_with(['+', '-']) && !cell.chars().all(numeric))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_when_they_must_be_and_formulas_defused() {
        let mut out = String::new();
        write_row(
            &mut out,
            &[
                "plain",
                "a,b",
                "say \"hi\"",
                "two\nlines",
                "=1+1",
                "",
                "+7 900 1",
                "-A1",
            ],
        );
        assert_eq!(
            out,
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"'=1+1\",,+7 900 1,\"'-A1\"\r\n"
        );
        assert_eq!(iso_time(86_400_000 + 3_723_000), "1970-01-02T01:02:03Z");
    }
}
