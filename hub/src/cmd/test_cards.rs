//! `tallybox test-cards`: the simulated issuer's cards, and the simulated
//! providers' payment codes, to try every answer.

use serde_json::json;
use tallybox_core::card::test_cards::TEST_CARDS;

pub fn run(as_json: bool) {
    if as_json {
        let cards: Vec<_> = TEST_CARDS
            .iter()
            .map(|c| {
                json!({
                    "name": c.name, "pan": c.pan, "expiry": c.expiry, "track2": c.track2(),
                    "pin": c.pin, "behaviour": c.description, "rule": c.behaviour,
                })
            })
            .collect();
        println!("{}", serde_json::Value::from(cards));
        return;
    }
    println!(
        "{:<12} {:<17} {:<6} {:<5} behaviour",
        "name", "card number", "exp", "PIN"
    );
    for c in TEST_CARDS {
        let expiry = format!("{}/{}", &c.expiry[2..], &c.expiry[..2]);
        println!(
            "{:<12} {:<17} {:<6} {:<5} {}",
            c.name,
            c.pan,
            expiry,
            c.pin.unwrap_or("-"),
            c.description
        );
    }
    println!("\nPresent one on a simulated checkout: tallybox drive --control ADDR card NAME");
    println!(
        "\nPayment codes (tallybox demo, tallybox-provider-sim): 18 digits, 28… Alipay, 13… WeChat Pay; the last four say:"
    );
    for (ending, _, behaviour) in tallybox::payments::TEST_CODES {
        println!(
            "  …{ending}  {behaviour}   (Alipay 28123456789012{ending}, WeChat Pay 13123456789012{ending})"
        );
    }
    println!("Scan one on a simulated checkout after A<amount>#: tallybox drive --control ADDR scan CODE");
    println!(
        "(In the demo a …0001 buyer confirms after {} s.)",
        tallybox::payments::sim::CONFIRMS_AFTER.as_secs()
    );
}
