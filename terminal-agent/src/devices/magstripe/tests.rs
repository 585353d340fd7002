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

/// A reader module's lines as its datasheet draws them, one bit per
/// `period`: data set while the strobe is high, then the strobe's fall
/// (the sampler watches it fall only). Each edge: (is it the strobe?,
/// low?, at).
fn module_edges(bits: &[bool], period: Duration) -> Vec<(bool, bool, Duration)> {
    let mut edges = Vec::new();
    let mut data_low = false;
    for (i, &one) in bits.iter().enumerate() {
        let start = period * i as u32;
        if one != data_low {
            data_low = one; // data low = 1
            edges.push((false, data_low, start));
        }
        edges.push((true, true, start + period / 10));
    }
    edges
}

fn sample(edges: &[(bool, bool, Duration)]) -> Vec<bool> {
    let mut s = super::swipe::StrobeSampler::new(false);
    let mut bits = Vec::new();
    for &(strobe, low, at) in edges {
        if strobe {
            bits.extend(s.strobe_fell(at));
        } else {
            s.data(low, at);
        }
    }
    bits.extend(s.finish());
    bits
}

#[test]
fn clocked_bits_are_read_from_the_kernels_edges_not_when_the_thread_wakes() {
    use super::swipe::LineEvent::*;
    let clocked = strobe_swipe(TRACK, &SwipeStyle::default(), Duration::ZERO).unwrap();
    let bits: Vec<bool> = clocked
        .iter()
        .filter_map(|e| match e {
            Bit(b) => Some(*b),
            _ => None,
        })
        .collect();
    let edges = module_edges(&bits, Duration::from_micros(300));
    assert_eq!(sample(&edges), bits);

    // The decoder reads the card from them.
    let mut d = SwipeDecoder::new(Duration::from_secs(3));
    let mut out = None;
    for e in [Present(true, Duration::ZERO)]
        .into_iter()
        .chain(sample(&edges).into_iter().map(Bit))
        .chain([Present(false, Duration::from_millis(150))])
    {
        out = d.feed(e).or(out);
    }
    assert_eq!(out, Some(SwipeOutcome::Read(TRACK.into())));

    // Each line's edges come from its own interrupt thread: data's edge
    // queued after the strobe's fall it preceded, or before the fall it
    // followed; and data changing while the strobe is still low (noise, or
    // the next bit set early): the bits are the same.
    for (i_is_strobe, name) in [(true, "data's edge late"), (false, "data's edge early")] {
        let mut shuffled = edges.clone();
        for i in 1..shuffled.len() {
            if shuffled[i].0 == i_is_strobe && shuffled[i - 1].0 != i_is_strobe && i % 3 == 0 {
                shuffled.swap(i - 1, i);
            }
        }
        assert_ne!(shuffled, edges, "{name}: some edges out of order");
        assert_eq!(sample(&shuffled), bits, "{name}");
    }
    let mut noisy = Vec::new();
    let mut data_low = false;
    for &(strobe, low, at) in &edges {
        noisy.push((strobe, low, at));
        if !strobe {
            data_low = low;
        } else {
            let glitch = Duration::from_micros(20);
            noisy.push((false, !data_low, at + glitch));
            noisy.push((false, data_low, at + glitch * 2));
        }
    }
    assert_eq!(sample(&noisy), bits);

    // Data set 5 µs before the strobe fell, both taken in one interrupt:
    // the strobe (the lower line number) stamped first, data 3 µs later.
    let mut late = Vec::new();
    let mut data_low = false;
    for (i, &one) in bits.iter().enumerate() {
        let fall = Duration::from_micros(300) * i as u32 + Duration::from_micros(30);
        late.push((true, true, fall));
        if one != data_low {
            data_low = one;
            late.push((false, one, fall + Duration::from_micros(3)));
        }
    }
    assert_eq!(sample(&late), bits, "data stamped after the fall it came before");
}
