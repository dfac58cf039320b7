//! Windows Firewall rules through COM, with a minimal hand-written binding.
//!
//! Only four interfaces are needed ([`INetFwPolicy2`](https://learn.microsoft.com/en-us/windows/win32/api/netfw/nn-netfw-inetfwpolicy2),
//! `INetFwRules`, [`INetFwRule3`](https://learn.microsoft.com/en-us/windows/win32/api/netfw/nn-netfw-inetfwrule3)
//! and `IUnknown::Release`), so they are called through their vtables by slot number (as laid
//! out in `netfw.h`: `IUnknown` 0-2, `IDispatch` 3-6, then the interface's methods in
//! declaration order) instead of pulling in the `windows` crate's COM support. Before adding
//! rules, `get_LocalPolicyModifyState` tells whether group policy makes local rules
//! ineffective; then setup says so rather than pretend.

use std::ffi::c_void;

use windows_sys::core::{GUID, HRESULT};
use windows_sys::Win32::Foundation::{SysAllocString, SysFreeString};
use windows_sys::Win32::System::Com::{CoCreateInstance, CoInitializeEx, CoUninitialize, CLSCTX_INPROC_SERVER};

use super::sys::wide;
use crate::error::Error;
use crate::firewall_plan::FirewallRule;

const CLSID_NET_FW_POLICY2: GUID = GUID::from_u128(0xe2b3c97f_6ae1_41ac_817a_f6f92166d7dd);
const CLSID_NET_FW_RULE: GUID = GUID::from_u128(0x2c5bc43e_3369_4c33_ab0c_be9469677af4);
const IID_INET_FW_POLICY2: GUID = GUID::from_u128(0x98325047_c671_4174_8d81_defcd3f03186);
const IID_INET_FW_RULE3: GUID = GUID::from_u128(0xb21563ff_d696_4222_ab46_4e89b73ab34a);
const COINIT_APARTMENTTHREADED: u32 = 0x2;
const RPC_E_CHANGED_MODE: HRESULT = 0x8001_0106_u32 as i32;

// Vtable slots (see the module docs).
const RELEASE: usize = 2;
const POLICY_GET_RULES: usize = 18;
const POLICY_GET_LOCAL_POLICY_MODIFY_STATE: usize = 28;
const RULES_ADD: usize = 8;
const RULES_REMOVE: usize = 9;
const RULE_PUT_NAME: usize = 8;
const RULE_PUT_DESCRIPTION: usize = 10;
const RULE_PUT_PROTOCOL: usize = 16;
const RULE_PUT_REMOTE_PORTS: usize = 20;
const RULE_PUT_REMOTE_ADDRESSES: usize = 24;
const RULE_PUT_DIRECTION: usize = 28;
const RULE_PUT_ENABLED: usize = 34;
const RULE_PUT_PROFILES: usize = 38;
const RULE_PUT_ACTION: usize = 42;
const RULE_PUT_LOCAL_USER_AUTHORIZED_LIST: usize = 50;

const NET_FW_RULE_DIR_OUT: i32 = 2;
const NET_FW_ACTION_BLOCK: i32 = 0;
const NET_FW_PROFILE2_ALL: i32 = 0x7fff_ffff;
const VARIANT_TRUE: i16 = -1;

type Method<A> = unsafe extern "system" fn(*mut c_void, A) -> HRESULT;

/// An owned COM interface pointer, released on drop.
struct ComPtr(*mut c_void);

impl ComPtr {
    /// The function in vtable slot `index`.
    ///
    /// # Safety
    /// `F` must be the exact signature of that slot.
    unsafe fn slot<F: Copy>(&self, index: usize) -> F {
        // SAFETY: a COM object starts with a pointer to its vtable of function pointers; the
        // caller guarantees the index and the signature.
        unsafe {
            let vtbl = *(self.0 as *const *const *const c_void);
            std::mem::transmute_copy::<*const c_void, F>(&*vtbl.add(index))
        }
    }

    /// Calls a one-argument method and checks its HRESULT.
    ///
    /// # Safety
    /// Slot `index` must take exactly one argument of type `A`.
    unsafe fn call<A>(&self, index: usize, arg: A, step: &'static str) -> Result<(), Error> {
        // SAFETY: guaranteed by the caller.
        let hr = unsafe { self.slot::<Method<A>>(index)(self.0, arg) };
        if hr < 0 {
            return Err(Error::Com { step, hresult: hr });
        }
        Ok(())
    }
}

impl Drop for ComPtr {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: slot 2 is IUnknown::Release for every COM interface.
            unsafe { self.slot::<unsafe extern "system" fn(*mut c_void) -> u32>(RELEASE)(self.0) };
        }
    }
}

/// A BSTR, freed on drop.
struct Bstr(*mut u16);

impl Bstr {
    fn new(s: &str) -> Bstr {
        let w = wide(s);
        // SAFETY: NUL-terminated input; the result is owned by the returned value.
        Bstr(unsafe { SysAllocString(w.as_ptr()) }.cast_mut())
    }
}

impl Drop for Bstr {
    fn drop(&mut self) {
        // SAFETY: allocated by SysAllocString, freed once.
        unsafe { SysFreeString(self.0) };
    }
}

/// COM initialised for this thread, uninitialised on drop when this call did it.
struct Apartment(bool);

impl Apartment {
    fn enter() -> Result<Apartment, Error> {
        // SAFETY: reserved argument is null.
        let hr = unsafe { CoInitializeEx(std::ptr::null(), COINIT_APARTMENTTHREADED) };
        if hr < 0 && hr != RPC_E_CHANGED_MODE {
            return Err(Error::Com { step: "com_initialize", hresult: hr });
        }
        Ok(Apartment(hr >= 0))
    }
}

impl Drop for Apartment {
    fn drop(&mut self) {
        if self.0 {
            // SAFETY: balances the successful CoInitializeEx of `enter`.
            unsafe { CoUninitialize() };
        }
    }
}

fn create(clsid: &GUID, iid: &GUID, step: &'static str) -> Result<ComPtr, Error> {
    let mut p: *mut c_void = std::ptr::null_mut();
    // SAFETY: valid GUIDs; `p` receives an interface pointer we own.
    let hr = unsafe { CoCreateInstance(clsid, std::ptr::null_mut(), CLSCTX_INPROC_SERVER, iid, &mut p) };
    if hr < 0 || p.is_null() {
        return Err(Error::Com { step, hresult: hr });
    }
    Ok(ComPtr(p))
}

fn rules_collection(policy: &ComPtr) -> Result<ComPtr, Error> {
    let mut rules: *mut c_void = std::ptr::null_mut();
    // SAFETY: get_Rules(This, INetFwRules**).
    unsafe { policy.call(POLICY_GET_RULES, &mut rules as *mut *mut c_void, "firewall_get_rules")? };
    Ok(ComPtr(rules))
}

/// Whether local rules take effect for the current profiles (`NET_FW_MODIFY_STATE_OK` = 0);
/// 1 means group policy overrides them, 2 that inbound is blocked by policy.
pub fn local_policy_modify_state() -> Result<i32, Error> {
    let _com = Apartment::enter()?;
    let policy = create(&CLSID_NET_FW_POLICY2, &IID_INET_FW_POLICY2, "firewall_policy")?;
    let mut state = 0i32;
    // SAFETY: get_LocalPolicyModifyState(This, NET_FW_MODIFY_STATE*).
    unsafe { policy.call(POLICY_GET_LOCAL_POLICY_MODIFY_STATE, &mut state as *mut i32, "firewall_modify_state")? };
    Ok(state)
}

/// Adds `rules`, replacing any rule of the same name.
pub fn add(rules: &[FirewallRule]) -> Result<(), Error> {
    let _com = Apartment::enter()?;
    let policy = create(&CLSID_NET_FW_POLICY2, &IID_INET_FW_POLICY2, "firewall_policy")?;
    let collection = rules_collection(&policy)?;
    for r in rules {
        let name = Bstr::new(&r.name);
        // SAFETY: Remove(This, BSTR); a missing rule is not an error worth reporting.
        let _ = unsafe { collection.call(RULES_REMOVE, name.0, "firewall_remove_rule") };
        let rule = create(&CLSID_NET_FW_RULE, &IID_INET_FW_RULE3, "firewall_new_rule")?;
        let description = Bstr::new(&r.description);
        let addresses = Bstr::new(&r.remote_addresses_string());
        let users = Bstr::new(&r.local_users_sddl);
        // SAFETY: each slot's single argument has the type netfw.h declares for it.
        unsafe {
            rule.call(RULE_PUT_NAME, name.0, "firewall_rule_name")?;
            rule.call(RULE_PUT_DESCRIPTION, description.0, "firewall_rule_description")?;
            rule.call(RULE_PUT_DIRECTION, NET_FW_RULE_DIR_OUT, "firewall_rule_direction")?;
            rule.call(RULE_PUT_ACTION, NET_FW_ACTION_BLOCK, "firewall_rule_action")?;
            rule.call(RULE_PUT_PROTOCOL, r.protocol.number(), "firewall_rule_protocol")?;
            if let Some(ports) = r.remote_ports_string() {
                let ports = Bstr::new(&ports);
                rule.call(RULE_PUT_REMOTE_PORTS, ports.0, "firewall_rule_ports")?;
            }
            rule.call(RULE_PUT_REMOTE_ADDRESSES, addresses.0, "firewall_rule_addresses")?;
            rule.call(RULE_PUT_LOCAL_USER_AUTHORIZED_LIST, users.0, "firewall_rule_users")?;
            rule.call(RULE_PUT_PROFILES, NET_FW_PROFILE2_ALL, "firewall_rule_profiles")?;
            rule.call(RULE_PUT_ENABLED, VARIANT_TRUE, "firewall_rule_enabled")?;
            collection.call(RULES_ADD, rule.0, "firewall_add_rule")?;
        }
    }
    Ok(())
}

/// Removes the rules named `names` (missing ones are fine).
pub fn remove(names: &[String]) -> Result<(), Error> {
    let _com = Apartment::enter()?;
    let policy = create(&CLSID_NET_FW_POLICY2, &IID_INET_FW_POLICY2, "firewall_policy")?;
    let collection = rules_collection(&policy)?;
    for n in names {
        let name = Bstr::new(n);
        // SAFETY: Remove(This, BSTR).
        let _ = unsafe { collection.call(RULES_REMOVE, name.0, "firewall_remove_rule") };
    }
    Ok(())
}
