//! The swipe decoder against the F2F swipe model: real hands, both ways,
//! damaged stripes, a card left in the slot.

use std::time::Duration;

use super::swipe::{SwipeDecoder, SwipeOutcome};
use super::*;
use crate::devices::model::magstripe::{f2f_swipe, strobe_swipe, SwipeStyle};

const TRACK: &str = ";6222021000000005=28121010000012345678?";
const BIT: Duration = Duration::from_micros(400);

fn swipe(style: &SwipeStyle) -> Option<SwipeOutcome> {
    let mut d = SwipeDecoder::new(Duration::from_secs(3));
    let events = f2f_swipe(TRACK, style, BIT, Duration::from_secs(10)).unwrap();
    events.into_iter().filter_map(|e| d.feed(e)).last()
}

#[test]
fn hands_of_every_speed_read_the_card_both_ways() {
    for seed in 1..=40 {
        for reversed in [false, true] {
            let style = SwipeStyle {
                reversed,
                jitter: 0.15,
                speed_change: if seed % 2 == 0 { 0.8 } else { -0.4 },
                seed,
                ..Default::default()
            };
            assert_eq!(swipe(&style), Some(SwipeOutcome::Read(TRACK.into())), "{style:?}");
        }
    }
}

#[test]
fn damaged_bits_are_a_read_error_never_a_wrong_card() {
    let mut errors = 0;
    for bit in 20..(20 + 5 * 40) {
        let style = SwipeStyle {
            flip_bits: vec![bit],
            jitter: 0.1,
            seed: bit as u64,
            ..Default::default()
        };
        match swipe(&style) {
            Some(SwipeOutcome::Failed(_)) => errors += 1,
            Some(SwipeOutcome::Read(track)) => {
                assert_eq!(track, TRACK, "flipped bit {bit} read as another card")
            }
            other => panic!("bit {bit}: {other:?}"),
        }
    }
    assert!(errors > 150, "only {errors} damaged swipes caught");
}

#[test]
fn a_damaged_swipe_becomes_a_read_error_for_the_session() {
    let style = SwipeStyle {
        flip_bits: vec![60],
        ..Default::default()
    };
    let Some(SwipeOutcome::Failed(e)) = swipe(&style) else {
        panic!("damaged swipe decoded")
    };
    assert!(read_card(Err(e)).is_err());
    let good = read_card(Ok(TRACK.into())).unwrap();
    assert_eq!(good.pan.masked().as_str(), "622202******0005");
}

#[test]
fn clocked_readers_decode_the_same_way() {
    let mut d = SwipeDecoder::new(Duration::from_secs(3));
    let style = SwipeStyle {
        reversed: true,
        ..Default::default()
    };
    let out = strobe_swipe(TRACK, &style, Duration::ZERO)
        .unwrap()
        .into_iter()
        .filter_map(|e| d.feed(e))
        .last();
    assert_eq!(out, Some(SwipeOutcome::Read(TRACK.into())));
}

#[test]
fn a_card_left_in_the_slot_is_reported_stuck_once() {
    use super::swipe::LineEvent::*;
    let mut d = SwipeDecoder::new(Duration::from_secs(3));
    assert_eq!(d.feed(Present(true, Duration::from_secs(1))), None);
    assert_eq!(d.feed(Tick(Duration::from_secs(2))), None);
    assert_eq!(
        d.feed(Tick(Duration::from_secs(4))),
        Some(SwipeOutcome::CardStuck)
    );
    assert_eq!(d.feed(Tick(Duration::from_secs(5))), None, "told once");
    assert_eq!(
        d.feed(Present(false, Duration::from_secs(9))),
        None,
        "pulling it out is not a swipe"
    );
}
