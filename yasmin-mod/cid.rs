// SPDX-License-Identifier: GPL-2.0
//! The vsock CID mapping used everywhere in YASMIN (module, watcher, preload, tools).
//!
//! vsock reserves CIDs 0 (hypervisor), 1 (local) and 2 (host), and Xen guests start at
//! domid 1, so CIDs cannot equal domids. YASMIN uses `CID = domid + 2`: dom0 is the
//! vsock "host" (CID 2) and guest domid N is CID N + 2. Domain ids stop below
//! DOMID_FIRST_RESERVED (0x7FF0), so every valid domid has a CID and vice versa.

/// First domid Xen reserves for special purposes (DOMID_SELF, DOMID_IO, ...).
pub(crate) const DOMID_FIRST_RESERVED: u32 = 0x7FF0;
/// Offset between a domain id and its vsock CID.
pub(crate) const CID_OFFSET: u32 = 2;

/// The vsock CID of a domain, or `None` for a reserved/invalid domid.
pub(crate) fn domid_to_cid(domid: u32) -> Option<u32> {
    (domid < DOMID_FIRST_RESERVED).then(|| domid + CID_OFFSET)
}

/// The domain id of a vsock CID, or `None` if no domain has that CID.
#[allow(dead_code)] // Used by the transport's connect path.
pub(crate) fn cid_to_domid(cid: u32) -> Option<u32> {
    cid.checked_sub(CID_OFFSET)
        .filter(|d| *d < DOMID_FIRST_RESERVED)
}
