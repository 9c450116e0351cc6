//! SLO monitors end to end, all real processes: redis-server, the
//! `hawkeye-server` and `hawkeye-agent` binaries, an SMTP server (aiosmtpd)
//! and the `hawkeye` CLI. Two SLOs of three lines each, with the workbook's
//! default triggers: one burning its budget 30× (3 % errors against 99.9 %)
//! sends exactly one mail, the fast page, naming the budget; the slower
//! page and the ticket, which fire too, mail the same address and are
//! inhibited by it. The other, at 0.5×, sends nothing. `hawkeye slo`
//! shows both budgets and burn rates, and `hawkeye backtest` over the same
//! data lists the page the agent mailed.

mod common;

use common::stack::{ticks, Stack};

const MONITORS: &str = "version: 1
monitors:
  - id: checkout
    metric: checkout.errors
    ratio_of: checkout.requests
    interval: 1s
    slo: {objective: 99.9, period: 30d, page: oncall@example.com}
  - id: search
    metric: search.errors
    ratio_of: search.requests
    interval: 1s
    slo: {objective: 99.9, period: 30d, page: oncall@example.com}
";

#[test]
fn an_slo_burning_30x_mails_one_page_and_one_at_half_its_budget_mails_nothing() {
    let stack = Stack::start(MONITORS);
    let agent = stack.agent("agent");
    stack.send(&[
        "checkout.requests:1000|c",
        "checkout.errors:30|c",
        "search.requests:10000|c",
        "search.errors:5|c",
    ]);

    let mails = stack.mails(1);
    // More checks: nothing else is sent (the windows keep the counts).
    ticks(&agent, 5);
    let all = stack.smtp.messages();
    assert_eq!(all.len(), 1, "{:?}", common::stack::subjects(&all));
    let mail = &mails[0];
    assert_eq!(
        mail.subject(),
        "[shop/e2e] checkout.errors error budget burning >= 14.4x (level 3)"
    );
    let body = mail.body();
    for line in [
        "Error budget of checkout.errors / checkout.requests (SLO 99.9% over 30d) burning 30x over 1h and 30x over 5m, both at or over 14.4x (level 3).",
        "Burn rate:   30x over 1h and 30x over 5m (fires at 14.4x over both)",
        "Budget:      3000% consumed, -2900% remaining over 30d (SLI 97%)",
        "Exhausted:   exhausted",
    ] {
        assert!(body.contains(line), "{line:?} not in:\n{body}");
    }
    assert_eq!(mail.rcpt_to(), ["oncall@example.com"]);

    let out = stack.cli(&["slo"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "checkout: objective 99.9% over 30d, SLI 97% (30 bad of 1000), budget 3000% consumed, -2900% remaining, exhausted",
        "  level 1  >= 1x  30x over 3d, 30x over 6h  BURNING",
        "  level 3  >= 14.4x  30x over 1h, 30x over 5m  BURNING",
        "search: objective 99.9% over 30d, SLI 99.95% (5 bad of 10000), budget 50% consumed, 50% remaining, in 30d at the 1h burn rate",
        "  level 3  >= 14.4x  0.5x over 1h, 0.5x over 5m\n",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    let out = stack.cli(&["slo", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["monitor"], "search");
    assert_eq!(rows[1]["budget_remaining"], 50.0);
    assert_eq!(rows[1]["triggers"][2]["long_burn"], 0.5);
    assert_eq!(rows[1]["triggers"][2]["breaching"], false);

    // The backtest replays the same data through the same evaluation: the
    // page the agent mailed, with the same Message-ID, and nothing for the
    // SLO at 0.5x.
    let out = stack.cli(&["backtest", "monitors.yaml", "--since", "10m", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let sent: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["type"] == "notification" && !l["to"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(sent.len(), 1, "{lines:#?}");
    assert_eq!(sent[0]["subject"], mail.subject());
    assert_eq!(sent[0]["status"], "firing");
    assert_eq!(sent[0]["level"], 3);
    let message_id = sent[0]["message_id"].as_str().unwrap();
    assert!(
        mail.header("Message-ID")
            .unwrap_or_default()
            .contains(message_id),
        "{message_id} vs {:?}",
        mail.header("Message-ID")
    );
    assert!(
        !lines.iter().any(|l| l["type"] == "notification"
            && l["monitor"].as_str().unwrap_or("").contains("search")),
        "{lines:#?}"
    );
}
