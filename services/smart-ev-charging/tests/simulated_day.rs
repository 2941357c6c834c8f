//! The controller replayed over simulated days (tests print their figures with
//! --no-capture; `cargo bench -p smart-ev-charging` prints them always).

use smart_ev_charging::control::{Config, Mode};
use smart_ev_charging::simulation::{day_profile, simulate};

#[test]
fn pv_mode_on_a_cloudy_day_uses_surplus_without_flapping_or_importing() {
    let profile = day_profile(8.0, 0.5, 42);
    let config = Config::default();
    let pv = simulate(&profile, Mode::Pv, &config, 20.0);
    let jumpy = simulate(
        &profile,
        Mode::Pv,
        &Config {
            enable_delay_s: 0.0,
            disable_delay_s: 0.0,
            min_command_interval_s: 0.0,
            ..Config::default()
        },
        20.0,
    );
    println!(
        "pv mode, 8 kWp, cloudy: {pv:?}, share {:.2}",
        pv.share_into_car()
    );
    println!("same without hysteresis: {jumpy:?}");
    assert!(pv.car_total_kwh > 5.0, "the car got little: {pv:?}");
    assert!(
        pv.switches < jumpy.switches,
        "hysteresis must reduce switching: {} vs {}",
        pv.switches,
        jumpy.switches
    );
    assert!(
        pv.car_from_pv_kwh >= jumpy.car_from_pv_kwh,
        "riding through short clouds must not lose solar energy"
    );
    assert!(
        pv.import_caused_kwh < 0.1 * pv.car_total_kwh,
        "pv mode imported too much: {pv:?}"
    );
}

#[test]
fn fast_charges_from_the_grid_and_off_never_charges() {
    let profile = day_profile(8.0, 0.5, 7);
    let fast = simulate(&profile, Mode::Fast, &Config::default(), 50.0);
    assert!((fast.car_total_kwh - 24.0 * 11.04).abs() < 0.5, "{fast:?}");
    assert!(fast.import_caused_kwh > 100.0, "{fast:?}");
    let off = simulate(&profile, Mode::Off, &Config::default(), 50.0);
    assert_eq!((off.car_total_kwh, off.switches), (0.0, 0));
}

#[test]
fn phase_switching_brings_more_of_a_weak_sun_into_the_car() {
    let profile = day_profile(8.0, 0.9, 9);
    let three_phase = simulate(&profile, Mode::Pv, &Config::default(), 20.0);
    let switching = simulate(
        &profile,
        Mode::Pv,
        &Config {
            phase_switching: true,
            ..Config::default()
        },
        20.0,
    );
    println!("overcast, 3p only: {three_phase:?}\novercast, 1p/3p: {switching:?}");
    assert!(
        switching.car_from_pv_kwh > three_phase.car_from_pv_kwh * 1.5,
        "{switching:?} vs {three_phase:?}"
    );
    assert!(
        switching.import_caused_kwh < 0.1 * switching.car_total_kwh,
        "{switching:?}"
    );
}
