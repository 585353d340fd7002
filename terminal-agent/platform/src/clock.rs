//! The store's local time. Slips, reports, the day's counts, the fraud
//! rules' opening hours and the checkout's clock all read it here, in the
//! time zone the owner chose on the web page (the hub tells its terminals at
//! sign-in and when it changes); until one is chosen, the system's. Zone
//! rules come from the system's tz database (Debian's `tzdata`).

use std::sync::RwLock;

use chrono::{DateTime, FixedOffset, Utc};

struct Zone {
    name: String,
    rules: tz::TimeZone,
}

static ZONE: RwLock<Option<Zone>> = RwLock::new(None);

/// The tz database: a file per zone, and the list of zones.
const ZONE_DIR: &str = "/usr/share/zoneinfo";
const ZONE_TABLE: &str = "/usr/share/zoneinfo/zone1970.tab";

/// Loads a zone by its IANA name (`Asia/Shanghai`); anything that is not a
/// plain name (a path, a POSIX rule string) is refused.
pub fn load(name: &str) -> Result<tz::TimeZone, String> {
    let plain = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('/')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_-+".contains(&b));
    if !plain || !name.bytes().next().is_some_and(|b| b.is_ascii_uppercase()) {
        return Err(format!("{name:?} is not a time zone name like Asia/Shanghai"));
    }
    let data =
        std::fs::read(format!("{ZONE_DIR}/{name}")).map_err(|_| format!("unknown time zone {name}"))?;
    tz::TimeZone::from_tz_data(&data).map_err(|e| format!("time zone {name} is damaged: {e}"))
}

/// From now on, local time is `name`'s.
pub fn set_zone(name: &str) -> Result<(), String> {
    let rules = load(name)?;
    *ZONE.write().unwrap_or_else(|e| e.into_inner()) = Some(Zone {
        name: name.to_string(),
        rules,
    });
    Ok(())
}

/// The zone in use: the one set, else the system's.
pub fn zone_name() -> String {
    match &*ZONE.read().unwrap_or_else(|e| e.into_inner()) {
        Some(zone) => zone.name.clone(),
        None => iana_time_zone::get_timezone().unwrap_or_else(|_| "UTC".into()),
    }
}

/// Seconds east of UTC in `rules` at `utc`.
pub fn offset_at(rules: &tz::TimeZone, utc: DateTime<Utc>) -> i32 {
    rules
        .find_local_time_type(utc.timestamp())
        .map(|t| t.ut_offset())
        .unwrap_or(0)
}

/// Milliseconds since 1970 (UTC) now: what request ids start with.
pub fn unix_ms() -> u64 {
    Utc::now().timestamp_millis().max(0) as u64
}

/// The store's local time now.
pub fn now() -> DateTime<FixedOffset> {
    to_local(Utc::now())
}

/// An instant as the store's clock reads it.
pub fn to_local(utc: DateTime<Utc>) -> DateTime<FixedOffset> {
    let seconds = match &*ZONE.read().unwrap_or_else(|e| e.into_inner()) {
        Some(zone) => offset_at(&zone.rules, utc),
        None => return utc.with_timezone(&chrono::Local).fixed_offset(),
    };
    utc.with_timezone(
        &FixedOffset::east_opt(seconds).unwrap_or(FixedOffset::east_opt(0).expect("zero offset")),
    )
}

/// The UTC instant of a local wall-clock time (the earlier one when a
/// clock change repeats it; a time a change skips is read in the old offset).
pub fn to_utc(local: chrono::NaiveDateTime) -> DateTime<Utc> {
    use chrono::TimeZone;
    let guard = ZONE.read().unwrap_or_else(|e| e.into_inner());
    let Some(zone) = &*guard else {
        return chrono::Local
            .from_local_datetime(&local)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&local));
    };
    to_utc_in(&zone.rules, local)
}

/// [`to_utc`] in `rules`.
pub fn to_utc_in(rules: &tz::TimeZone, local: chrono::NaiveDateTime) -> DateTime<Utc> {
    use chrono::TimeZone;
    let as_utc = Utc.from_utc_datetime(&local);
    // The offset one side of the instant, then the offset there: settles
    // in two steps whichever side of a change the time is on.
    let first = as_utc - chrono::Duration::seconds(offset_at(rules, as_utc).into());
    let second = as_utc - chrono::Duration::seconds(offset_at(rules, first).into());
    second.min(first)
}

/// Every zone name the tz database lists, sorted, with `UTC` first.
pub fn zones() -> Vec<String> {
    let table = std::fs::read_to_string(ZONE_TABLE).unwrap_or_default();
    let mut names: Vec<String> = table
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split('\t').nth(2))
        .map(str::to_string)
        .collect();
    names.sort();
    names.insert(0, "UTC".into());
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn zones_give_their_offsets_summer_and_winter() {
        let shanghai = load("Asia/Shanghai").unwrap();
        let new_york = load("America/New_York").unwrap();
        let winter = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap();
        let summer = Utc.with_ymd_and_hms(2026, 7, 15, 12, 0, 0).unwrap();
        assert_eq!(offset_at(&shanghai, winter), 8 * 3600);
        assert_eq!(offset_at(&shanghai, summer), 8 * 3600);
        assert_eq!(offset_at(&new_york, winter), -5 * 3600);
        assert_eq!(offset_at(&new_york, summer), -4 * 3600);
    }

    #[test]
    fn local_midnight_is_found_in_utc() {
        let day = |m, d| {
            chrono::NaiveDate::from_ymd_opt(2026, m, d)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
        };
        let shanghai = load("Asia/Shanghai").unwrap();
        assert_eq!(
            to_utc_in(&shanghai, day(11, 26)),
            Utc.with_ymd_and_hms(2026, 11, 25, 16, 0, 0).unwrap()
        );
        // New York on the day summer time ends (1 November 2026): midnight is still EDT.
        let new_york = load("America/New_York").unwrap();
        assert_eq!(
            to_utc_in(&new_york, day(11, 1)),
            Utc.with_ymd_and_hms(2026, 11, 1, 4, 0, 0).unwrap()
        );
        assert_eq!(
            to_utc_in(&new_york, day(11, 2)),
            Utc.with_ymd_and_hms(2026, 11, 2, 5, 0, 0).unwrap()
        );
    }

    #[test]
    fn only_plain_zone_names_are_taken() {
        for bad in [
            "",
            "../../etc/passwd",
            "/etc/localtime",
            "CST-8",
            "Nowhere/City",
            "asia/shanghai",
        ] {
            assert!(load(bad).is_err(), "{bad:?}");
        }
        assert!(load("UTC").is_ok());
        let all = zones();
        assert_eq!(all[0], "UTC");
        assert!(all.iter().any(|z| z == "Asia/Shanghai"), "{} zones", all.len());
    }
}
