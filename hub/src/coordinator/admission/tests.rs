//! Every admission rule as a table of facts and the verdict they give.

use super::*;
use crate::store::fraud::Facts as FraudFacts;

fn amount(minor: u64) -> Amount {
    Amount::from_minor(minor).unwrap()
}

fn noon() -> NaiveTime {
    NaiveTime::from_hms_opt(12, 0, 0).unwrap()
}

fn ask(rules: &FraudRules) -> Ask<'_> {
    Ask {
        kind: TxnKind::Sale,
        amount: amount(1250),
        currency: Currency::CNY,
        undo: None,
        tender: Tender::Card,
        entry_mode: Some(EntryMode::Swipe),
        supervisor_approved: false,
        cashier_required: false,
        rules,
        now: noon(),
    }
}

fn admitted(minor: u64) -> Verdict {
    Verdict::Admit {
        amount: amount(minor),
        original: None,
    }
}

fn reference() -> OriginalRef {
    OriginalRef {
        batch_no: 7,
        at: chrono::DateTime::from_timestamp(1_796_000_000, 0).unwrap(),
        trace_no: 42,
        reference_no: "000000000042".into(),
        auth_code: "A1B2C3".into(),
    }
}

/// An approved sale of 12.50 in the open batch (7), paid with the card presented.
fn sale() -> Original {
    Original {
        id: 9,
        kind: TxnKind::Sale,
        status: TxnStatus::Approved,
        batch_no: 7,
        amount: amount(1250),
        voided: false,
        refunded: 0,
        tender: Tender::Card,
        same_card: true,
        reference: reference(),
    }
}

fn undo_facts(sale: Option<Original>) -> Facts {
    Facts {
        undo: UndoFacts {
            sale,
            open_batch: 7,
            sold_today: 100_000,
            refunded_today: 0,
        },
        ..Facts::default()
    }
}

fn of_the_sale(minor: u64) -> Verdict {
    Verdict::Admit {
        amount: amount(minor),
        original: Some((9, reference())),
    }
}

#[test]
fn the_amount_and_the_currency() {
    let max = amount(5_000_000);
    let cases = [
        (TxnKind::Sale, 1250, "CNY", true),
        (TxnKind::Sale, 0, "CNY", false),
        (TxnKind::Sale, 5_000_000, "CNY", true),
        (TxnKind::Sale, 5_000_001, "CNY", false),
        (TxnKind::Sale, 1250, "HKD", false),
        // A void's amount is the sale's, a balance inquiry has none.
        (TxnKind::Void, 0, "CNY", true),
        (TxnKind::Balance, 0, "CNY", true),
        (TxnKind::Refund, 0, "USD", false),
    ];
    for (kind, minor, currency, ok) in cases {
        let got = check_amount(kind, amount(minor), currency, Currency::CNY, max);
        assert_eq!(got.is_ok(), ok, "{kind:?} {minor} {currency}: {got:?}");
    }
    let e = check_amount(TxnKind::Sale, amount(0), "CNY", Currency::CNY, max).unwrap_err();
    assert_eq!(e, "amount must be 0.01 to 50000.00");
    let yen = Currency::from_code("JPY").unwrap();
    let e = check_amount(TxnKind::Sale, amount(0), "JPY", yen, max).unwrap_err();
    assert_eq!(e, "amount must be 1 to 5000000");
    let e = check_amount(TxnKind::Sale, amount(1), "HKD", Currency::CNY, max).unwrap_err();
    assert_eq!(e, "this store takes CNY, not HKD");
}

#[test]
fn the_hubs_and_the_terminals_state_come_first_in_order() {
    let rules = FraudRules::default();
    let full = Unfit::DiskFull { free: 1024 };
    let cases: Vec<(&str, Facts, Verdict)> = vec![
        ("nothing against it", Facts::default(), admitted(1250)),
        (
            "recalled as lost",
            Facts {
                lost: true,
                frozen: Some("x".into()),
                ..Facts::default()
            },
            Verdict::Lost,
        ),
        (
            "disk full",
            Facts {
                unfit: Some(full.clone()),
                frozen: Some("x".into()),
                ..Facts::default()
            },
            Verdict::Unfit(full),
        ),
        (
            "frozen",
            Facts {
                frozen: Some("card testing".into()),
                pin_failures_today: 9,
                ..Facts::default()
            },
            Verdict::Refuse(reason::FROZEN),
        ),
        (
            "three wrong PINs today",
            Facts {
                pin_failures_today: MAX_PIN_TRIES,
                ..Facts::default()
            },
            Verdict::Refuse(reason::PIN_TRIES),
        ),
        (
            "two wrong PINs today",
            Facts {
                pin_failures_today: MAX_PIN_TRIES - 1,
                ..Facts::default()
            },
            admitted(1250),
        ),
    ];
    for (what, facts, verdict) in cases {
        assert_eq!(decide(&ask(&rules), &facts).verdict, verdict, "{what}");
    }
}

#[test]
fn a_cashier_must_be_signed_on_for_a_sale_when_the_owner_says_so() {
    let rules = FraudRules::default();
    let required = Ask {
        cashier_required: true,
        ..ask(&rules)
    };
    let signed_on = Facts {
        cashier_signed_on: true,
        ..Facts::default()
    };
    assert_eq!(
        decide(&required, &Facts::default()).verdict,
        Verdict::Refuse(reason::SIGN_ON_FIRST)
    );
    assert_eq!(decide(&required, &signed_on).verdict, admitted(1250));
    assert_eq!(decide(&ask(&rules), &Facts::default()).verdict, admitted(1250));
    let balance = Ask {
        kind: TxnKind::Balance,
        ..required
    };
    assert_eq!(decide(&balance, &Facts::default()).verdict, admitted(1250));
}

#[test]
fn fraud_rules_block_ask_the_supervisor_or_only_note() {
    let rules = FraudRules {
        amount_action: Action::AskSupervisor,
        ..FraudRules::default()
    };
    let testing = FraudFacts {
        declines: rules.card_testing_declines,
        ..FraudFacts::default()
    };
    let large = FraudFacts {
        usual_minor: 100,
        usual_of: rules.amount_min_history,
        ..FraudFacts::default()
    };
    let same_card = FraudFacts {
        same_card: rules.same_card_max,
        ..FraudFacts::default()
    };
    let with = |fraud: &FraudFacts| Facts {
        fraud: fraud.clone(),
        ..Facts::default()
    };

    let blocked = decide(&ask(&rules), &with(&testing));
    assert_eq!(blocked.verdict, Verdict::Refuse(reason::FRAUD_BLOCKED));
    assert_eq!(blocked.hits[0].rule, fraud::CARD_TESTING);
    assert!(blocked.freeze.is_some(), "card testing freezes the terminal");
    let no_freeze = FraudRules {
        freeze_on_card_testing: false,
        ..rules.clone()
    };
    assert_eq!(decide(&ask(&no_freeze), &with(&testing)).freeze, None);

    let asked = decide(&ask(&rules), &with(&large));
    assert_eq!(asked.verdict, Verdict::Refuse(reason::NEEDS_SUPERVISOR));
    let approved = Ask {
        supervisor_approved: true,
        ..ask(&rules)
    };
    let through = decide(&approved, &with(&large));
    assert_eq!(through.verdict, admitted(1250));
    assert_eq!(through.hits[0].action, Action::Allow);
    assert!(through.hits[0].detail.ends_with("approved by the supervisor"));

    let noted = decide(&ask(&rules), &with(&same_card));
    assert_eq!(noted.verdict, admitted(1250));
    assert_eq!((noted.hits.len(), noted.hits[0].action), (1, Action::Allow));

    let late = FraudRules {
        opening_hours: Some("08:00-22:00".into()),
        outside_hours_action: Action::Block,
        ..FraudRules::default()
    };
    let at_eleven = Ask {
        now: NaiveTime::from_hms_opt(23, 0, 0).unwrap(),
        ..ask(&late)
    };
    assert_eq!(
        decide(&at_eleven, &Facts::default()).verdict,
        Verdict::Refuse(reason::FRAUD_BLOCKED)
    );
    assert_eq!(decide(&ask(&late), &Facts::default()).verdict, admitted(1250));

    // A balance inquiry moves no money: the sale rules do not judge it.
    let balance = Ask {
        kind: TxnKind::Balance,
        ..ask(&rules)
    };
    assert!(decide(&balance, &with(&testing)).hits.is_empty());
}

#[test]
fn a_void_takes_back_a_whole_sale_of_the_open_batch_with_its_card() {
    let rules = FraudRules::default();
    let void = Ask {
        kind: TxnKind::Void,
        amount: Amount::ZERO,
        undo: Some(42),
        // A void's PIN count does not matter: the supervisor's PIN authorised it.
        ..ask(&rules)
    };
    let cases: Vec<(&str, Option<Original>, Verdict)> = vec![
        ("the sale", Some(sale()), of_the_sale(1250)),
        ("no such trace number", None, Verdict::Refuse(reason::NO_ORIGINAL)),
        (
            "a declined sale",
            Some(Original {
                status: TxnStatus::Declined,
                ..sale()
            }),
            Verdict::Refuse(reason::NO_ORIGINAL),
        ),
        (
            "a refund, not a sale",
            Some(Original {
                kind: TxnKind::Refund,
                ..sale()
            }),
            Verdict::Refuse(reason::NO_ORIGINAL),
        ),
        (
            "a cash sale, asked back to a card",
            Some(Original {
                tender: Tender::Cash,
                ..sale()
            }),
            Verdict::Refuse(reason::OTHER_CARD),
        ),
        (
            "voided already",
            Some(Original {
                voided: true,
                ..sale()
            }),
            Verdict::Refuse(reason::NO_ORIGINAL),
        ),
        (
            "an earlier batch",
            Some(Original {
                batch_no: 6,
                ..sale()
            }),
            Verdict::Refuse(reason::NO_ORIGINAL),
        ),
        (
            "partly refunded",
            Some(Original {
                refunded: 1,
                ..sale()
            }),
            Verdict::Refuse(reason::NO_ORIGINAL),
        ),
        (
            "another card",
            Some(Original {
                same_card: false,
                ..sale()
            }),
            Verdict::Refuse(reason::OTHER_CARD),
        ),
    ];
    for (what, original, verdict) in cases {
        let mut facts = undo_facts(original);
        facts.pin_failures_today = MAX_PIN_TRIES;
        assert_eq!(decide(&void, &facts).verdict, verdict, "{what}");
    }
}

#[test]
fn a_refund_gives_back_at_most_what_is_left_of_the_sale() {
    let rules = FraudRules::default();
    let refund = |minor| Ask {
        kind: TxnKind::Refund,
        amount: amount(minor),
        undo: Some(42),
        ..ask(&rules)
    };
    let refunded_1000 = Original {
        refunded: 1000,
        ..sale()
    };
    let cases = [
        ("all of it", sale(), 1250, of_the_sale(1250)),
        ("part of it", sale(), 500, of_the_sale(500)),
        ("nothing", sale(), 0, Verdict::Refuse(reason::REFUND_TOO_LARGE)),
        (
            "more than the sale",
            sale(),
            1251,
            Verdict::Refuse(reason::REFUND_TOO_LARGE),
        ),
        ("what is left", refunded_1000.clone(), 250, of_the_sale(250)),
        (
            "more than is left",
            refunded_1000,
            251,
            Verdict::Refuse(reason::REFUND_TOO_LARGE),
        ),
        (
            "of an earlier batch",
            Original {
                batch_no: 3,
                ..sale()
            },
            1250,
            of_the_sale(1250),
        ),
    ];
    for (what, original, minor, verdict) in cases {
        let decided = decide(&refund(minor), &undo_facts(Some(original)));
        assert_eq!(decided.verdict, verdict, "{what}");
        assert!(decided.hits.is_empty(), "{what}");
    }
}

#[test]
fn refund_fraud_rules_note_or_block() {
    // As shipped, a refund to another card is refused; the owner may let it
    // through (noted) instead.
    assert_eq!(FraudRules::default().refund_other_card_action, Action::Block);
    let noting = FraudRules {
        refund_other_card_action: Action::Allow,
        ..FraudRules::default()
    };
    let blocking = FraudRules {
        refund_other_card_action: Action::Block,
        refunds_over_sales_action: Action::Block,
        ..FraudRules::default()
    };
    let other_card = undo_facts(Some(Original {
        same_card: false,
        ..sale()
    }));
    let mut over_sales = undo_facts(Some(sale()));
    over_sales.undo.sold_today = 1000;
    over_sales.undo.refunded_today = 900;
    for (facts, rule) in [
        (&other_card, fraud::REFUND_OTHER_CARD),
        (&over_sales, fraud::REFUNDS_OVER_SALES),
    ] {
        let refund = |rules| Ask {
            kind: TxnKind::Refund,
            amount: amount(200),
            undo: Some(42),
            ..ask(rules)
        };
        let noted = decide(&refund(&noting), facts);
        assert_eq!(noted.verdict, of_the_sale(200), "{rule}");
        assert_eq!(noted.hits.iter().map(|h| h.rule).collect::<Vec<_>>(), [rule]);
        let blocked = decide(&refund(&blocking), facts);
        assert_eq!(blocked.verdict, Verdict::Refuse(reason::FRAUD_BLOCKED), "{rule}");
        assert_eq!(blocked.hits.len(), 1, "the hit is kept as evidence");
    }
    let detail = &decide(
        &Ask {
            kind: TxnKind::Refund,
            amount: amount(200),
            undo: Some(42),
            ..ask(&noting)
        },
        &over_sales,
    )
    .hits[0]
        .detail;
    assert_eq!(detail, "refunds today would reach 11.00 against sales of 10.00");
}
