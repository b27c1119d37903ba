//! Python argument values into Rust ones, each checked and named in the error when it is wrong:
//! a `TypeError` for a value of the wrong type, a `fleetsh.ConfigError` for a value that cannot
//! work.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyString};

use crate::errors;

/// A number of seconds (an `int` or a `float`, more than zero and finite) as a duration.
pub(crate) fn seconds(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    if value.is_instance_of::<PyBool>() {
        return Err(errors::wrong_type(argument, "a number of seconds", value));
    }
    let secs: f64 = value
        .extract()
        .map_err(|_| errors::wrong_type(argument, "a number of seconds", value))?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(errors::config(
            value.py(),
            argument,
            &format!("must be a number of seconds above zero, got {secs}"),
        ));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| {
        errors::config(
            value.py(),
            argument,
            &format!("{secs} seconds is too long a duration"),
        )
    })
}

/// An optional number of seconds (`None`: not set).
pub(crate) fn opt_seconds(
    argument: &str,
    value: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<Duration>> {
    match value {
        Some(v) if !v.is_none() => seconds(argument, v).map(Some),
        _ => Ok(None),
    }
}

/// An integer from `min` to `max` (a `bool` is refused: `fanout=True` is a mistake).
pub(crate) fn integer(
    argument: &str,
    value: &Bound<'_, PyAny>,
    min: u64,
    max: u64,
) -> PyResult<u64> {
    if value.is_instance_of::<PyBool>() {
        return Err(errors::wrong_type(argument, "an integer", value));
    }
    let n: i128 = value
        .extract()
        .map_err(|_| errors::wrong_type(argument, "an integer", value))?;
    match u64::try_from(n) {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(errors::config(
            value.py(),
            argument,
            &format!("must be an integer from {min} to {max}, got {n}"),
        )),
    }
}

/// An optional integer from `min` to `max` (`None`: not set).
pub(crate) fn opt_integer(
    argument: &str,
    value: Option<&Bound<'_, PyAny>>,
    min: u64,
    max: u64,
) -> PyResult<Option<u64>> {
    match value {
        Some(v) if !v.is_none() => integer(argument, v, min, max).map(Some),
        _ => Ok(None),
    }
}

/// An optional string that is not empty (`None`: not set).
pub(crate) fn opt_text(
    argument: &str,
    value: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<String>> {
    match value {
        Some(v) if !v.is_none() => {
            let s: String = v
                .extract()
                .map_err(|_| errors::wrong_type(argument, "a string", v))?;
            if s.is_empty() {
                return Err(errors::config(v.py(), argument, "must not be empty"));
            }
            Ok(Some(s))
        }
        _ => Ok(None),
    }
}

/// A path: a `str` or an `os.PathLike` (`pathlib.Path`), not empty.
pub(crate) fn path(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    let p: PathBuf = value
        .extract()
        .map_err(|_| errors::wrong_type(argument, "a path (str or os.PathLike)", value))?;
    if p.as_os_str().is_empty() {
        return Err(errors::config(value.py(), argument, "the path is empty"));
    }
    Ok(p)
}

/// An optional path (`None`: not set).
pub(crate) fn opt_path(
    argument: &str,
    value: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<PathBuf>> {
    match value {
        Some(v) if !v.is_none() => path(argument, v).map(Some),
        _ => Ok(None),
    }
}

/// One path or a list of them (`None`: none).
pub(crate) fn paths(argument: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<PathBuf>> {
    let Some(v) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    if v.extract::<PathBuf>().is_ok() {
        return Ok(vec![path(argument, v)?]);
    }
    let mut out = Vec::new();
    for item in v
        .try_iter()
        .map_err(|_| errors::wrong_type(argument, "a path or a list of paths", v))?
    {
        out.push(path(argument, &item?)?);
    }
    Ok(out)
}

/// One string or a list of strings (`None`: none); a `str` is one item, not its characters.
pub(crate) fn texts(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(vec![s.to_cow()?.into_owned()]);
    }
    let mut out = Vec::new();
    for item in value
        .try_iter()
        .map_err(|_| errors::wrong_type(argument, "a string or a list of strings", value))?
    {
        let item = item?;
        out.push(
            item.extract::<String>().map_err(|_| {
                errors::wrong_type(argument, "a string or a list of strings", &item)
            })?,
        );
    }
    Ok(out)
}

/// An amount as the command line writes it: a count (`50`) or a percentage (`"10%"`).
pub(crate) fn amount(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<fleetsh::Amount> {
    let text = if value.is_instance_of::<PyString>() {
        value.extract::<String>()?
    } else {
        integer(argument, value, 0, u64::MAX)?.to_string()
    };
    text.parse::<fleetsh::Amount>()
        .map_err(|reason| errors::config(value.py(), argument, &reason))
}

/// A value already checked to fit the narrower integer type (saturating, never panicking).
pub(crate) fn narrow<T: TryFrom<u64> + Bounded>(n: u64) -> T {
    T::try_from(n).unwrap_or(T::MAX)
}

/// The largest value of an integer type, for [`narrow`].
pub(crate) trait Bounded {
    /// The largest value.
    const MAX: Self;
}

impl Bounded for u16 {
    const MAX: Self = u16::MAX;
}

impl Bounded for u32 {
    const MAX: Self = u32::MAX;
}

impl Bounded for usize {
    const MAX: Self = usize::MAX;
}
