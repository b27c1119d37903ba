//! Host addresses and names.

use std::net::Ipv4Addr;

use crate::SimError;

/// The name of host `index` (0-based): `sim00001`, `sim00002`, ... (at least 5 digits).
pub(crate) fn host_name(index: usize) -> String {
    format!("sim{:05}", index + 1)
}

/// `count` loopback addresses from `base` upwards, skipping those ending in `.0` or `.255`.
pub(crate) fn addresses(base: Ipv4Addr, count: usize) -> Result<Vec<Ipv4Addr>, SimError> {
    if count == 0 {
        return Err(SimError::BadCount { count });
    }
    if base.octets()[0] != 127 {
        return Err(SimError::AddressOutsideLoopback { addr: base });
    }
    let overflow = || SimError::AddressOverflow { base, count };
    // 127/8 has fewer than 2^24 usable addresses: refuse before allocating.
    if count >= 1 << 24 {
        return Err(overflow());
    }
    let mut out = Vec::with_capacity(count);
    let mut next = u32::from(base);
    while out.len() < count {
        let addr = Ipv4Addr::from(next);
        if addr.octets()[0] != 127 {
            return Err(overflow());
        }
        let last = addr.octets()[3];
        if last != 0 && last != 255 {
            out.push(addr);
        }
        next = next.checked_add(1).ok_or_else(overflow)?;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(host_name(0), "sim00001");
        assert_eq!(host_name(41), "sim00042");
        assert_eq!(host_name(99_999), "sim100000");
    }

    #[test]
    fn skips_0_and_255() {
        let a = addresses(Ipv4Addr::new(127, 1, 0, 253), 4).unwrap();
        assert_eq!(
            a,
            [
                Ipv4Addr::new(127, 1, 0, 253),
                Ipv4Addr::new(127, 1, 0, 254),
                Ipv4Addr::new(127, 1, 1, 1),
                Ipv4Addr::new(127, 1, 1, 2),
            ]
        );
        let a = addresses(Ipv4Addr::new(127, 1, 0, 0), 1).unwrap();
        assert_eq!(a, [Ipv4Addr::new(127, 1, 0, 1)]);
        let a = addresses(Ipv4Addr::new(127, 1, 0, 1), 10_000).unwrap();
        assert_eq!(a.len(), 10_000);
        assert_eq!(a[253], Ipv4Addr::new(127, 1, 0, 254));
        assert_eq!(a[254], Ipv4Addr::new(127, 1, 1, 1));
    }

    #[test]
    fn errors() {
        assert!(matches!(
            addresses(Ipv4Addr::new(10, 0, 0, 1), 1),
            Err(SimError::AddressOutsideLoopback { .. })
        ));
        assert!(matches!(
            addresses(Ipv4Addr::new(127, 255, 255, 253), 3),
            Err(SimError::AddressOverflow { .. })
        ));
        assert!(addresses(Ipv4Addr::new(127, 255, 255, 253), 2).is_ok());
        assert!(matches!(
            addresses(Ipv4Addr::new(127, 1, 0, 1), 0),
            Err(SimError::BadCount { count: 0 })
        ));
        assert!(matches!(
            addresses(Ipv4Addr::new(127, 0, 0, 1), 1 << 24),
            Err(SimError::AddressOverflow { .. })
        ));
    }
}
