"""Deterministic sample data for the demo and the tests.

Store sales: daily sales per store (a panel: one row per store and day) with weekday,
yearly, holiday and promo seasonality, competition and customers, multiplicative noise.
Churn: a binary classification table. Trips: event data, many bike-share trips per
station per hour, the weather an hourly value shared by every trip of that hour. All
can inject drift from a given day: shifted/scaled inputs AND a changed relationship
between inputs and target, phased in over a week, so a model trained before the drift
gets clearly worse after it.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from modelops.config import ModelopsConfig
from modelops.data.storage import write_partition

_HOLIDAYS = {(1, 1): "a", (5, 1): "a", (10, 3): "a", (12, 25): "c", (12, 26): "c"}


def _easter(year: int) -> date:
    """Anonymous Gregorian algorithm: Easter Sunday (state holiday 'b' on Good Friday and Easter Monday)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    lv = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * lv) // 451
    month = (h + lv - 7 * m + 114) // 31
    day = (h + lv - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def _state_holidays(days: pd.DatetimeIndex) -> np.ndarray:
    out = np.array(["0"] * len(days), dtype=object)
    md = list(zip(days.month, days.day))
    for i, key in enumerate(md):
        if key in _HOLIDAYS:
            out[i] = _HOLIDAYS[key]
    for y in sorted(set(days.year)):
        e = pd.Timestamp(_easter(y))
        for delta in (-2, 1):
            hit = days == e + pd.Timedelta(days=delta)
            out[hit] = "b"
    return out


def _school_holidays(days: pd.DatetimeIndex) -> np.ndarray:
    doy = days.dayofyear.to_numpy()
    return (((doy >= 182) & (doy <= 225)) | (doy >= 355) | (doy <= 5) | ((doy >= 300) & (doy <= 306))).astype(np.int64)


def _ramp(days: pd.DatetimeIndex, drift_start: date | None, ramp_days: int = 7) -> np.ndarray:
    """0 before the drift, rising linearly to 1 over ``ramp_days``."""
    if drift_start is None:
        return np.zeros(len(days))
    since = (days - pd.Timestamp(drift_start)).days.to_numpy().astype(float)
    return np.clip((since + 1) / ramp_days, 0.0, 1.0) * (since >= 0)


def generate_store_sales(start: date, end: date, n_stores: int = 50, seed: int = 7, drift_start: date | None = None) -> pd.DataFrame:
    """One row per store and day in [start, end)."""
    rng = np.random.default_rng(seed)
    days = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D", inclusive="left")
    n_days, S = len(days), n_stores
    if n_days == 0 or S <= 0:
        raise ValueError("need at least one day and one store")

    # per-store attributes
    store_type = rng.choice(np.array(["a", "b", "c", "d"]), S, p=[0.5, 0.05, 0.15, 0.3])
    assortment = rng.choice(np.array(["a", "b", "c"]), S, p=[0.5, 0.05, 0.45])
    type_effect = pd.Series({"a": 1.0, "b": 1.6, "c": 1.05, "d": 0.95})[store_type].to_numpy()
    base = rng.lognormal(np.log(5500), 0.35, S) * type_effect
    comp_dist = np.round(rng.lognormal(np.log(2500), 1.0, S), -1)
    comp_since = rng.integers(0, 120, S)  # months competition has been open at `start`
    promo2 = (rng.random(S) < 0.5).astype(np.int64)
    spend_per_customer = rng.normal(9.5, 1.2, S).clip(6, 14)

    # calendar (days)
    dow = days.dayofweek.to_numpy()
    doy = days.dayofyear.to_numpy()
    dow_effect = np.array([1.18, 1.02, 0.98, 0.97, 1.05, 0.92, 0.70])[dow]
    year_effect = 1 + 0.06 * np.sin(2 * np.pi * (doy - 80) / 365.25) + 0.22 * np.exp(-((doy - 352) / 9.0) ** 2)
    state_hol = _state_holidays(days)
    hol_effect = np.where(state_hol == "0", 1.0, 0.55)
    school = _school_holidays(days)
    months_since_start = ((days - days[0]).days.to_numpy() / 30.44)
    trend = 1 + 0.015 * months_since_start / 12

    ramp = _ramp(days, drift_start)[:, None]  # (days, 1)

    # promos in blocks: most weeks alternate, shifted per store group
    week = ((days - pd.Timestamp("2000-01-03")).days.to_numpy() // 7)
    group = rng.integers(0, 2, S)
    promo = (((week[:, None] + group[None, :]) % 2 == 0) & (dow[:, None] < 5)).astype(np.int64)
    extra_promo = rng.random((n_days, S)) < 0.25 * ramp  # drift: more promo days
    promo = np.maximum(promo, (extra_promo & (dow[:, None] < 5)).astype(np.int64))

    # competition: drift brings new competitors much closer
    dist = comp_dist[None, :] * (1 - 0.6 * ramp)
    open_months = comp_since[None, :] + months_since_start[:, None].astype(np.int64)
    new_comp = ramp > 0
    open_months = np.where(new_comp, np.minimum(open_months, ((days - pd.Timestamp(drift_start or days[0])).days.to_numpy()[:, None] // 30).clip(0)), open_months)
    comp_effect = 1 - 0.12 * np.exp(-dist / 1500.0)

    # relationship: promo uplift weakens and per-customer spend drops after the drift
    promo_uplift = 0.22 * (1 - 0.8 * ramp) + 0.03 * promo2[None, :]
    spend = spend_per_customer[None, :] * (1 - 0.25 * ramp)
    level = (base[None, :] * dow_effect[:, None] * year_effect[:, None] * hol_effect[:, None] * trend[:, None]
             * comp_effect * (1 + promo_uplift * promo) * (1 + 0.03 * school[:, None]))
    customers = np.maximum(1, np.round(level / spend_per_customer[None, :] * (1 + 0.35 * ramp)
                                       * rng.lognormal(0, 0.03, (n_days, S)))).astype(np.int64)
    # sales follow customers x spend, with noise; the drifted spend lowers sales per customer
    sales = customers * spend * rng.lognormal(0, 0.045, (n_days, S))
    sales = np.maximum(sales, 1.0)

    df = pd.DataFrame({
        "date": np.repeat(days.to_numpy(), S),
        "store": np.tile(np.arange(1, S + 1, dtype=np.int64), n_days),
        "sales": np.round(sales.ravel(), 2),
        "customers": customers.ravel(),
        "promo": promo.ravel(),
        "promo2": np.tile(promo2, n_days),
        "school_holiday": np.repeat(school, S),
        "competition_distance": np.round(dist.ravel(), 1),
        "competition_open_months": open_months.ravel().astype(np.int64),
        "store_type": np.tile(store_type, n_days).astype(object),
        "assortment": np.tile(assortment, n_days).astype(object),
        "state_holiday": np.repeat(state_hol, S).astype(object),
    })
    for c in ("store_type", "assortment", "state_holiday"):
        df[c] = df[c].astype("string").astype(object)
    return df


def generate_churn(start: date, end: date, n_per_day: int = 60, seed: int = 11, drift_start: date | None = None) -> pd.DataFrame:
    """Customer snapshots with a 0/1 churn label; learnable from contract, tenure, support calls, charges."""
    rng = np.random.default_rng(seed)
    days = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D", inclusive="left")
    n = len(days) * n_per_day
    day = np.repeat(days.to_numpy(), n_per_day)
    ramp = np.repeat(_ramp(days, drift_start), n_per_day)
    contract = rng.choice(np.array(["month_to_month", "one_year", "two_year"]), n, p=[0.55, 0.25, 0.20])
    payment = rng.choice(np.array(["card", "bank_transfer", "electronic_check", "mailed_check"]), n, p=[0.3, 0.25, 0.3, 0.15])
    tenure = rng.gamma(2.0, 14.0, n).round().clip(0, 600)
    monthly = (rng.normal(65, 25, n) * (1 + 0.3 * ramp)).clip(15, 200).round(2)
    calls = rng.poisson(1.2 + 1.5 * ramp, n)
    usage = rng.gamma(3.0, 120.0, n).round(1)
    late = rng.poisson(0.4, n)
    logit = (-1.9 + 1.4 * (contract == "month_to_month") - 0.9 * (contract == "two_year") - 0.035 * tenure
             + 0.02 * (monthly - 65) + 0.45 * calls + 0.6 * (payment == "electronic_check") + 0.5 * late - 0.002 * (usage - 360))
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return pd.DataFrame({
        "date": day, "customer_id": np.arange(1, n + 1, dtype=np.int64), "churned": churned,
        "tenure_months": tenure, "monthly_charges": monthly, "support_calls": calls.astype(np.int64),
        "usage_minutes": usage, "late_payments": late.astype(np.int64),
        "contract": contract.astype(object), "payment_method": payment.astype(object),
    })


def generate_trips(start: date, end: date, n_stations: int = 30, trips_per_day: float = 12.0, seed: int = 13,
                   drift_start: date | None = None) -> pd.DataFrame:
    """Bike-share trips in [start, end): event data, many rows per station per day and per hour.

    ``started_at`` is the hour the trip started (so one station often has several trips with the
    same timestamp); ``temperature``, ``humidity`` and ``weather`` are hourly values shared by
    every trip of that hour; ``distance_km`` and ``rider_type`` are per trip; ``district`` and
    ``capacity`` per station. ``duration_min`` (the regression target, always > 0) follows
    distance, rider type, weather, hour, temperature and a station effect; ``is_long`` (0/1,
    a classification target) is a duration above 25 minutes. Drift: warmer, more humid hours,
    longer trips and slower riders (the relationship changes too).
    """
    rng = np.random.default_rng(seed)
    days = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D", inclusive="left")
    if len(days) == 0 or n_stations <= 0:
        raise ValueError("need at least one day and one station")
    hours = pd.date_range(days[0], days[-1] + pd.Timedelta(hours=23), freq="h")
    # hourly weather, shared by every trip of the hour
    doy, hod = hours.dayofyear.to_numpy(), hours.hour.to_numpy()
    h_ramp = _ramp(hours.normalize(), drift_start)
    temperature = (12 + 10 * np.sin(2 * np.pi * (doy - 110) / 365.25) + 4 * np.sin(2 * np.pi * (hod - 9) / 24)
                   + rng.normal(0, 2.0, len(hours)) + 6 * h_ramp).round(1)
    humidity = np.clip(65 - 0.8 * (temperature - 12) + rng.normal(0, 8, len(hours)) + 12 * h_ramp, 10, 100).round(0)
    weather = rng.choice(np.array(["clear", "cloudy", "rain"]), len(hours), p=[0.55, 0.3, 0.15]).astype(object)
    # stations
    district = rng.choice(np.array(["north", "south", "east", "west", "centre"]), n_stations).astype(object)
    capacity = rng.integers(10, 40, n_stations)
    station_speed = rng.normal(1.0, 0.08, n_stations).clip(0.75, 1.3)
    # trips: busier at commute hours and on weekdays
    hour_weight = np.array([0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 1.2, 2.5, 3.0, 1.6, 1.0, 1.1, 1.3, 1.2, 1.1, 1.3, 1.9, 2.8,
                            2.6, 1.6, 1.0, 0.7, 0.5, 0.3])
    weekday = np.where(hours.dayofweek.to_numpy() < 5, 1.0, 0.7)
    rate = trips_per_day * hour_weight[hod] / hour_weight.sum() * weekday * np.where(weather == "rain", 0.5, 1.0)
    counts = rng.poisson(np.outer(rate, np.ones(n_stations)))  # (hours, stations)
    h_idx, s_idx = np.nonzero(counts)
    reps = counts[h_idx, s_idx]
    h_idx, s_idx = np.repeat(h_idx, reps), np.repeat(s_idx, reps)
    n = len(h_idx)
    ramp = h_ramp[h_idx]
    rider = rng.choice(np.array(["member", "casual"]), n, p=[0.7, 0.3]).astype(object)
    distance = (rng.gamma(2.2, 1.1, n) * (1 + 0.4 * ramp)).round(2) + 0.2
    slow = np.where(rider == "casual", 1.35, 1.0) * np.where(weather[h_idx] == "rain", 1.15, 1.0)
    rush = np.isin(hod[h_idx], (7, 8, 17, 18)) * 0.12
    heat = 0.01 * np.abs(temperature[h_idx] - 18)
    minutes_per_km = (3.6 * slow * station_speed[s_idx] * (1 + rush + heat) * (1 + 0.3 * ramp * (rider == "casual"))
                      * rng.lognormal(0, 0.12, n))
    duration = (distance * minutes_per_km + 1.5).round(1)
    df = pd.DataFrame({
        "started_at": hours.to_numpy()[h_idx], "station_id": (s_idx + 1).astype(np.int64), "duration_min": duration,
        "is_long": (duration > 25).astype(np.int64), "distance_km": distance, "temperature": temperature[h_idx],
        "humidity": humidity[h_idx], "capacity": capacity[s_idx].astype(np.int64), "rider_type": rider,
        "weather": weather[h_idx], "district": district[s_idx],
    })
    order = np.lexsort((df["station_id"].to_numpy(), df["started_at"].to_numpy()))
    return df.iloc[order].reset_index(drop=True)


def generate_for_config(cfg: ModelopsConfig, start: date, end: date, seed: int = 7, drift_start: date | None = None,
                        n_entities: int | None = None) -> pd.DataFrame:
    """The shipped generator whose columns the config asks for: trips (event data, either task) when it names
    the trips' columns, else store sales for regression, churn for classification."""
    wanted = set(cfg.required_columns) - {cfg.data.timestamp_column}
    if wanted <= TRIP_COLUMNS:
        df = generate_trips(start, end, n_stations=n_entities or 30, seed=seed, drift_start=drift_start)
        df = df.rename(columns={"started_at": "date"})
    elif cfg.task == "regression":
        df = generate_store_sales(start, end, n_stores=n_entities or 50, seed=seed, drift_start=drift_start)
    else:
        df = generate_churn(start, end, n_per_day=n_entities or 60, seed=seed, drift_start=drift_start)
    missing = set(cfg.required_columns) - {cfg.data.timestamp_column} - set(df.columns)
    if missing:
        raise ValueError(f"the sample generator for task '{cfg.task}' does not produce columns {sorted(missing)} that "
                         f"{cfg.source_path or 'the config'} requires; point data.path at your own data instead")
    return df.rename(columns={"date": cfg.data.timestamp_column}) if cfg.data.timestamp_column != "date" else df


TRIP_COLUMNS = {"station_id", "duration_min", "is_long", "distance_km", "temperature", "humidity", "capacity", "rider_type",
                "weather", "district"}


def write_dataset(df: pd.DataFrame, cfg: ModelopsConfig) -> int:
    """As the config's layout reads it: one partition per day, or (layout files) one file per month
    in the glob's folder (``<name>-YYYY-MM.<format>``, a row group per day). Re-writing replaces files."""
    ts = cfg.data.timestamp_column
    if cfg.data.layout == "files":
        return _write_monthly_files(df, cfg)
    n = 0
    for day, part in df.groupby(df[ts].dt.normalize(), sort=True):
        write_partition(part.reset_index(drop=True), cfg.data.path, cfg.data.partition_column, day.date(), cfg.data.format)
        n += 1
    return n


def _write_monthly_files(df: pd.DataFrame, cfg: ModelopsConfig) -> int:
    import re

    import fsspec

    from modelops.settings import resolve_path

    path = resolve_path(cfg.data.path)
    folder, name = path.rsplit("/", 1)
    if re.search(r"[*?\[]", folder):
        raise ValueError(f"write_dataset writes into one folder; {path} has a wildcard before its file name")
    stem = re.split(r"[*?\[]", name, maxsplit=1)[0].rstrip("-_.") or "part"
    fmt = cfg.data.format
    ts = cfg.data.timestamp_column
    fs, base = fsspec.core.url_to_fs(folder)
    fs.makedirs(base, exist_ok=True)
    groups = df.groupby(df[ts].dt.to_period("M"), sort=True) if re.search(r"[*?\[]", name) else [(None, df)]
    n = 0
    for month, part in groups:
        target = path if month is None else f"{folder}/{stem}-{month}.{fmt}"
        part = part.sort_values(ts, kind="stable").reset_index(drop=True)
        with fsspec.open(target, "wb") as fh:
            if fmt == "parquet":  # about a day per row group: a window's filter skips the others
                per_day = int(part.groupby(part[ts].dt.normalize()).size().max()) if len(part) else 1
                part.to_parquet(fh, index=False, row_group_size=max(per_day, 1))
            else:
                part.to_csv(fh, index=False)
        n += 1
    return n
