//! `fleetsh bench`: the per-operation table against a fleet (here a simulated one).

use super::*;

#[test]
fn bench_prints_one_row_per_step_with_every_operation() {
    let sim = SimProcess::start(30, "127.46.0.1");
    let mut owned = Vec::new();
    let hosts = sim.path("hosts");
    let mut args = vec!["bench", "-H", &hosts, "--steps", "1,5,30"];
    args.extend(sim.args(&mut owned));
    let out = fleetsh(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| {
            l.strip_prefix("| ")
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        })
        .collect();
    assert_eq!(rows.len(), 3, "{table}");
    for (row, step) in rows.iter().zip(["1", "5", "30"]) {
        let cells: Vec<&str> = row
            .split('|')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(cells.len(), 12, "{row}");
        assert_eq!(cells[0], step);
        assert_eq!(cells[1], "30", "every host each step");
        assert_eq!(cells[2], "30", "all ok");
        for c in &cells[3..8] {
            assert!(
                c.parse::<f64>().is_ok(),
                "an operation without a median: {row}"
            );
        }
    }

    let out = fleetsh(&["bench", "-w", "127.0.0.1:1", "--steps", "1,0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("\"0\""), "{}", text(&out.stderr));
}
