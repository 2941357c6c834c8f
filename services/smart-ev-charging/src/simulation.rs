//! A simulated day to replay the controller on: PV from a clear-sky curve with passing
//! clouds, a household load profile, a home battery and a car that draws what it is
//! told. Deterministic (seeded), minute steps.

use crate::control::{Config, Controller, Meters, Mode};

/// What a day of charging did.
#[derive(Clone, Debug)]
pub struct DayFigures {
    /// PV beyond the house load, kWh.
    pub surplus_kwh: f64,
    /// Of that, what went into the car, kWh.
    pub car_from_pv_kwh: f64,
    /// Grid import while the car charged (up to the car's power), kWh.
    pub import_caused_kwh: f64,
    /// Charging starts and stops.
    pub switches: u32,
    pub car_total_kwh: f64,
}

impl DayFigures {
    pub fn share_into_car(&self) -> f64 {
        if self.surplus_kwh > 0.0 {
            self.car_from_pv_kwh / self.surplus_kwh
        } else {
            0.0
        }
    }
}

/// xorshift: small, deterministic, good enough for clouds.
struct Random(u64);

impl Random {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 1_000_000) as f64 / 1_000_000.0
    }
}

/// PV and load for each minute of the day (W), for `kwp` and a cloudiness 0..1.
pub fn day_profile(kwp: f64, cloudiness: f64, seed: u64) -> Vec<(f64, f64)> {
    let mut random = Random(seed.max(1));
    let mut cloud_factor = 1.0;
    let mut cloud_left = 0;
    (0..1440)
        .map(|minute| {
            let hour = minute as f64 / 60.0;
            let clear = if (6.0..20.0).contains(&hour) {
                kwp * 1000.0 * (std::f64::consts::PI * (hour - 6.0) / 14.0).sin().powf(1.5) * 0.85
            } else {
                0.0
            };
            if cloud_left == 0 {
                cloud_left = 1 + (random.next() * 9.0) as u32;
                cloud_factor = if random.next() < cloudiness {
                    0.2 + random.next() * 0.4
                } else {
                    1.0
                };
            }
            cloud_left -= 1;
            let mut load = 300.0 + random.next() * 100.0;
            if (7.0..8.0).contains(&hour) {
                load += 800.0;
            }
            if (12.0..13.0).contains(&hour) {
                load += 1500.0;
            }
            if (18.0..21.0).contains(&hour) {
                load += 1200.0;
            }
            (clear * cloud_factor, load)
        })
        .collect()
}

/// Replays `profile` with a 10 kWh / 5 kW battery starting at `battery_soc` %.
pub fn simulate(
    profile: &[(f64, f64)],
    mode: Mode,
    config: &Config,
    battery_soc: f64,
) -> DayFigures {
    let capacity_wh = 10_000.0;
    let battery_limit_w = 5_000.0;
    let mut stored_wh = capacity_wh * battery_soc / 100.0;
    let mut controller = Controller::default();
    let mut ev_w: f64 = 0.0;
    let mut last_meters = Meters::default();
    let mut figures = DayFigures {
        surplus_kwh: 0.0,
        car_from_pv_kwh: 0.0,
        import_caused_kwh: 0.0,
        switches: 0,
        car_total_kwh: 0.0,
    };
    let hours_per_step = 1.0 / 60.0;
    for (minute, &(pv, load)) in profile.iter().enumerate() {
        let decision = controller.decide(mode, &last_meters, config, minute as f64 * 60.0);
        let was_charging = ev_w > 0.0;
        ev_w = decision
            .current_a
            .map_or(0.0, |amps| amps * decision.phases * config.voltage_v);
        if was_charging != (ev_w > 0.0) {
            figures.switches += 1;
        }
        // The battery takes what is left after house and car, and covers what is missing.
        let net = pv - load - ev_w;
        let battery_w = if net > 0.0 {
            net.min(battery_limit_w)
                .min((capacity_wh - stored_wh) / hours_per_step)
        } else {
            -((-net).min(battery_limit_w).min(stored_wh / hours_per_step))
        };
        stored_wh += battery_w * hours_per_step;
        let grid_export = net - battery_w;
        let pv_beyond_load = (pv - load).max(0.0);
        figures.surplus_kwh += pv_beyond_load * hours_per_step / 1000.0;
        figures.car_from_pv_kwh += ev_w.min(pv_beyond_load) * hours_per_step / 1000.0;
        figures.car_total_kwh += ev_w * hours_per_step / 1000.0;
        if grid_export < 0.0 {
            figures.import_caused_kwh += ev_w.min(-grid_export) * hours_per_step / 1000.0;
        }
        let now_s = minute as f64 * 60.0;
        last_meters = Meters {
            grid_export_w: Some(grid_export),
            battery_charge_w: Some(battery_w),
            battery_soc: Some(100.0 * stored_wh / capacity_wh),
            ev_power_w: Some(ev_w),
            grid_reported_s: Some(now_s),
            ev_changed_s: Some(now_s),
        };
    }
    figures
}
