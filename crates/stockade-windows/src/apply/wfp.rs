//! Persistent WFP filters for the offline account: what the firewall rules miss.
//!
//! One [transaction](https://learn.microsoft.com/en-us/windows/win32/api/fwpmu/nf-fwpmu-fwpmtransactionbegin0)
//! adds stockade's persistent provider and sublayer (if missing) and, for each planned filter,
//! a block filter at `FWPM_LAYER_ALE_AUTH_CONNECT_V4` and `_V6` whose conditions are the account
//! (`FWPM_CONDITION_ALE_USER_ID`, a security descriptor naming its SID) and either the ICMP
//! protocol or a remote port. Filter keys are derived from the filter names
//! ([`crate::firewall_plan::wfp_filter_keys`]) so cleanup deletes them by key.

use windows_sys::core::GUID;
use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::NetworkManagement::WindowsFilteringPlatform::{
    FwpmEngineClose0, FwpmEngineOpen0, FwpmFilterAdd0, FwpmFilterDeleteByKey0, FwpmProviderAdd0,
    FwpmProviderDeleteByKey0, FwpmSubLayerAdd0, FwpmSubLayerDeleteByKey0, FwpmTransactionAbort0, FwpmTransactionBegin0,
    FwpmTransactionCommit0, FWPM_ACTION0, FWPM_CONDITION_ALE_USER_ID, FWPM_CONDITION_IP_PROTOCOL,
    FWPM_CONDITION_IP_REMOTE_PORT, FWPM_DISPLAY_DATA0, FWPM_FILTER0, FWPM_FILTER_CONDITION0,
    FWPM_FILTER_FLAG_PERSISTENT, FWPM_LAYER_ALE_AUTH_CONNECT_V4, FWPM_LAYER_ALE_AUTH_CONNECT_V6, FWPM_PROVIDER0,
    FWPM_PROVIDER_FLAG_PERSISTENT, FWPM_SUBLAYER0, FWPM_SUBLAYER_FLAG_PERSISTENT, FWP_ACTION_BLOCK, FWP_BYTE_BLOB,
    FWP_EMPTY, FWP_MATCH_EQUAL, FWP_SECURITY_DESCRIPTOR_TYPE, FWP_UINT16, FWP_UINT8,
};
use windows_sys::Win32::Security::GetSecurityDescriptorLength;

use super::sys::{wide, SecDesc};
use crate::error::Error;
use crate::firewall_plan::{wfp_filter_keys, WfpFilter, WfpMatch, WFP_PROVIDER_KEY, WFP_SUBLAYER_KEY};

const RPC_C_AUTHN_WINNT: u32 = 10;
const FWP_E_ALREADY_EXISTS: u32 = 0x8032_0009;
const FWP_E_NOT_FOUND: [u32; 4] = [0x8032_0001, 0x8032_0002, 0x8032_0003, 0x8032_0008];

/// An open filter engine session, closed with `FwpmEngineClose0` on drop.
struct Engine(HANDLE);

impl Engine {
    fn open() -> Result<Engine, Error> {
        let mut h: HANDLE = std::ptr::null_mut();
        // SAFETY: local machine, default session; `h` receives the engine handle.
        let rc =
            unsafe { FwpmEngineOpen0(std::ptr::null(), RPC_C_AUTHN_WINNT, std::ptr::null(), std::ptr::null(), &mut h) };
        if rc != 0 || h.is_null() {
            return Err(Error::win32("wfp_open", "filter engine", rc));
        }
        Ok(Engine(h))
    }

    fn h(&self) -> HANDLE {
        self.0
    }

    /// Runs `f` in one transaction: committed when it succeeds, aborted otherwise.
    fn transaction(&self, f: impl FnOnce(&Engine) -> Result<(), Error>) -> Result<(), Error> {
        // SAFETY: valid engine handle.
        let rc = unsafe { FwpmTransactionBegin0(self.h(), 0) };
        if rc != 0 {
            return Err(Error::win32("wfp_transaction", "begin", rc));
        }
        match f(self) {
            Ok(()) => {
                // SAFETY: a transaction is open.
                let rc = unsafe { FwpmTransactionCommit0(self.h()) };
                if rc != 0 {
                    return Err(Error::win32("wfp_transaction", "commit", rc));
                }
                Ok(())
            }
            Err(e) => {
                // SAFETY: a transaction is open.
                unsafe { FwpmTransactionAbort0(self.h()) };
                Err(e)
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: the engine handle from FwpmEngineOpen0, closed once.
        unsafe { FwpmEngineClose0(self.0) };
    }
}

fn display(name: &mut [u16]) -> FWPM_DISPLAY_DATA0 {
    FWPM_DISPLAY_DATA0 { name: name.as_mut_ptr(), description: std::ptr::null_mut() }
}

fn ok_or_exists(rc: u32, step: &'static str, object: &str) -> Result<(), Error> {
    if rc == 0 || rc == FWP_E_ALREADY_EXISTS {
        Ok(())
    } else {
        Err(Error::win32(step, object, rc))
    }
}

/// Adds `filters` (replacing filters with the same keys), with the provider and sublayer.
pub fn add(filters: &[WfpFilter]) -> Result<(), Error> {
    if filters.is_empty() {
        return Ok(());
    }
    let engine = Engine::open()?;
    engine.transaction(|e| {
        let mut provider_key = GUID::from_u128(WFP_PROVIDER_KEY);
        let mut pname = wide("stockade");
        // SAFETY: all-zero plain data; fields set below.
        let mut provider: FWPM_PROVIDER0 = unsafe { std::mem::zeroed() };
        provider.providerKey = provider_key;
        provider.displayData = display(&mut pname);
        provider.flags = FWPM_PROVIDER_FLAG_PERSISTENT;
        // SAFETY: valid engine and structure; no security descriptor.
        ok_or_exists(unsafe { FwpmProviderAdd0(e.h(), &provider, std::ptr::null_mut()) }, "wfp_provider", "stockade")?;
        let mut sname = wide("stockade sandbox");
        // SAFETY: as above.
        let mut sublayer: FWPM_SUBLAYER0 = unsafe { std::mem::zeroed() };
        sublayer.subLayerKey = GUID::from_u128(WFP_SUBLAYER_KEY);
        sublayer.displayData = display(&mut sname);
        sublayer.flags = FWPM_SUBLAYER_FLAG_PERSISTENT;
        sublayer.providerKey = &mut provider_key;
        sublayer.weight = 0x8000;
        // SAFETY: as above.
        ok_or_exists(unsafe { FwpmSubLayerAdd0(e.h(), &sublayer, std::ptr::null_mut()) }, "wfp_sublayer", "stockade")?;
        for f in filters {
            add_filter(e, f, &mut provider_key)?;
        }
        Ok(())
    })
}

fn add_filter(e: &Engine, f: &WfpFilter, provider_key: &mut GUID) -> Result<(), Error> {
    // AccessCheck (which WFP runs against this descriptor) needs an owner and a group.
    let sd = SecDesc::from_sddl(&f.user_sddl.replacen("O:LS", "O:LSG:LS", 1))?;
    // SAFETY: a valid self-relative descriptor.
    let sd_len = unsafe { GetSecurityDescriptorLength(sd.as_ptr()) };
    let mut blob = FWP_BYTE_BLOB { size: sd_len, data: sd.as_ptr().cast() };
    let keys = wfp_filter_keys(&f.name);
    for (i, (layer, icmp)) in
        [(FWPM_LAYER_ALE_AUTH_CONNECT_V4, 1u8), (FWPM_LAYER_ALE_AUTH_CONNECT_V6, 58u8)].iter().enumerate()
    {
        let key = GUID::from_u128(keys[i]);
        // SAFETY: valid engine; deleting a missing filter returns an error we ignore.
        unsafe { FwpmFilterDeleteByKey0(e.h(), &key) };
        // SAFETY: all-zero plain data; fields set below.
        let mut user: FWPM_FILTER_CONDITION0 = unsafe { std::mem::zeroed() };
        user.fieldKey = FWPM_CONDITION_ALE_USER_ID;
        user.matchType = FWP_MATCH_EQUAL;
        user.conditionValue.r#type = FWP_SECURITY_DESCRIPTOR_TYPE;
        user.conditionValue.Anonymous.sd = &mut blob;
        // SAFETY: as above.
        let mut what: FWPM_FILTER_CONDITION0 = unsafe { std::mem::zeroed() };
        what.matchType = FWP_MATCH_EQUAL;
        match f.matches {
            WfpMatch::Icmp => {
                what.fieldKey = FWPM_CONDITION_IP_PROTOCOL;
                what.conditionValue.r#type = FWP_UINT8;
                what.conditionValue.Anonymous.uint8 = *icmp;
            }
            WfpMatch::RemotePort { port } => {
                what.fieldKey = FWPM_CONDITION_IP_REMOTE_PORT;
                what.conditionValue.r#type = FWP_UINT16;
                what.conditionValue.Anonymous.uint16 = port;
            }
        }
        let mut conditions = [user, what];
        let mut name = wide(&f.name);
        // SAFETY: as above.
        let mut filter: FWPM_FILTER0 = unsafe { std::mem::zeroed() };
        filter.filterKey = key;
        filter.displayData = display(&mut name);
        filter.flags = FWPM_FILTER_FLAG_PERSISTENT;
        filter.providerKey = provider_key;
        filter.layerKey = *layer;
        filter.subLayerKey = GUID::from_u128(WFP_SUBLAYER_KEY);
        filter.weight.r#type = FWP_EMPTY;
        filter.numFilterConditions = conditions.len() as u32;
        filter.filterCondition = conditions.as_mut_ptr();
        filter.action = FWPM_ACTION0 { r#type: FWP_ACTION_BLOCK, ..unsafe_zeroed_action() };
        let mut id = 0u64;
        // SAFETY: every pointer in `filter` refers to locals alive for the call.
        let rc = unsafe { FwpmFilterAdd0(e.h(), &filter, std::ptr::null_mut(), &mut id) };
        if rc != 0 {
            return Err(Error::win32("wfp_add_filter", f.name.clone(), rc));
        }
    }
    Ok(())
}

fn unsafe_zeroed_action() -> FWPM_ACTION0 {
    // SAFETY: all-zero plain data.
    unsafe { std::mem::zeroed() }
}

/// Deletes the filters named `names`, then the sublayer and provider (missing ones are fine).
pub fn remove(names: &[String]) -> Result<(), Error> {
    if names.is_empty() {
        return Ok(());
    }
    let engine = Engine::open()?;
    engine.transaction(|e| {
        for n in names {
            for k in wfp_filter_keys(n) {
                let key = GUID::from_u128(k);
                // SAFETY: valid engine and key.
                let rc = unsafe { FwpmFilterDeleteByKey0(e.h(), &key) };
                if rc != 0 && !FWP_E_NOT_FOUND.contains(&rc) {
                    return Err(Error::win32("wfp_delete_filter", n.clone(), rc));
                }
            }
        }
        let sublayer = GUID::from_u128(WFP_SUBLAYER_KEY);
        let provider = GUID::from_u128(WFP_PROVIDER_KEY);
        // SAFETY: valid engine and keys; missing objects are fine.
        unsafe {
            FwpmSubLayerDeleteByKey0(e.h(), &sublayer);
            FwpmProviderDeleteByKey0(e.h(), &provider);
        }
        Ok(())
    })
}
