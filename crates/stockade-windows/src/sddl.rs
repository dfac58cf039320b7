//! Security descriptors to and from SDDL text.
//!
//! [SDDL](https://learn.microsoft.com/en-us/windows/win32/secauthz/security-descriptor-string-format)
//! is how the `apply` layer moves descriptors between the model and Windows:
//! `ConvertSecurityDescriptorToStringSecurityDescriptorW` gives the text of an object's
//! descriptor, [`parse`] turns it into the model, the plan's ACEs are merged in the model, and
//! [`render_dacl`] gives the text `ConvertStringSecurityDescriptorToSecurityDescriptorW` turns
//! back into a binary descriptor. The merge logic is therefore tested on every platform.
//!
//! Only allow and deny ACEs are modelled; any other ACE type (object, callback, audit in the
//! DACL) makes [`parse`] fail, and `apply` refuses to rewrite that object rather than drop it.

use crate::acl_model::{AccessMask, Ace, AceFlags, AceKind, SecurityDescriptor};
use crate::sid::Sid;

/// An SDDL string the model cannot represent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported SDDL at `{at}`: {what}")]
pub struct SddlError {
    /// The fragment.
    pub at: String,
    /// What is unsupported.
    pub what: &'static str,
}

/// [SID string aliases](https://learn.microsoft.com/en-us/windows/win32/secauthz/sid-strings)
/// that do not depend on the domain.
const ALIASES: &[(&str, &str)] = &[
    ("WD", "S-1-1-0"),
    ("CO", "S-1-3-0"),
    ("CG", "S-1-3-1"),
    ("OW", "S-1-3-4"),
    ("NU", "S-1-5-2"),
    ("IU", "S-1-5-4"),
    ("SU", "S-1-5-6"),
    ("AN", "S-1-5-7"),
    ("ED", "S-1-5-9"),
    ("PS", "S-1-5-10"),
    ("AU", "S-1-5-11"),
    ("RC", "S-1-5-12"),
    ("SY", "S-1-5-18"),
    ("LS", "S-1-5-19"),
    ("NS", "S-1-5-20"),
    ("BA", "S-1-5-32-544"),
    ("BU", "S-1-5-32-545"),
    ("BG", "S-1-5-32-546"),
    ("PU", "S-1-5-32-547"),
    ("AO", "S-1-5-32-548"),
    ("SO", "S-1-5-32-549"),
    ("PO", "S-1-5-32-550"),
    ("BO", "S-1-5-32-551"),
    ("RE", "S-1-5-32-552"),
    ("RU", "S-1-5-32-554"),
    ("RD", "S-1-5-32-555"),
    ("NO", "S-1-5-32-556"),
    ("MU", "S-1-5-32-558"),
    ("LU", "S-1-5-32-559"),
    ("IS", "S-1-5-32-568"),
    ("CY", "S-1-5-32-569"),
    ("ER", "S-1-5-32-573"),
    ("AC", "S-1-15-2-1"),
    ("WR", "S-1-5-33"),
    ("LW", "S-1-16-4096"),
    ("ME", "S-1-16-8192"),
    ("HI", "S-1-16-12288"),
    ("SI", "S-1-16-16384"),
];

/// Two-letter access right codes and their bits.
const RIGHTS: &[(&str, u32)] = &[
    ("GA", 0x1000_0000),
    ("GX", 0x2000_0000),
    ("GW", 0x4000_0000),
    ("GR", 0x8000_0000),
    ("SD", 0x1_0000),
    ("RC", 0x2_0000),
    ("WD", 0x4_0000),
    ("WO", 0x8_0000),
    ("FA", 0x001f_01ff),
    ("FR", 0x0012_0089),
    ("FW", 0x0012_0116),
    ("FX", 0x0012_00a0),
    ("CC", 0x1),
    ("DC", 0x2),
    ("LC", 0x4),
    ("SW", 0x8),
    ("RP", 0x10),
    ("WP", 0x20),
    ("DT", 0x40),
    ("LO", 0x80),
    ("CR", 0x100),
];

fn parse_sid(s: &str) -> Result<Sid, SddlError> {
    if let Some((_, full)) = ALIASES.iter().find(|(a, _)| *a == s) {
        return full.parse().map_err(|_| SddlError { at: s.into(), what: "alias" });
    }
    s.parse().map_err(|_| SddlError { at: s.into(), what: "unknown SID or domain-relative alias" })
}

fn parse_rights(s: &str) -> Result<AccessMask, SddlError> {
    let bad = || SddlError { at: s.into(), what: "access rights" };
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).map(AccessMask).map_err(|_| bad());
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map(AccessMask).map_err(|_| bad());
    }
    if s.len() % 2 != 0 {
        return Err(bad());
    }
    let mut m = 0;
    for i in (0..s.len()).step_by(2) {
        let code = s.get(i..i + 2).ok_or_else(bad)?;
        m |= RIGHTS.iter().find(|(c, _)| *c == code).ok_or_else(bad)?.1;
    }
    Ok(AccessMask(m))
}

fn parse_flags(s: &str) -> Result<AceFlags, SddlError> {
    let bad = || SddlError { at: s.into(), what: "ACE flags" };
    if s.len() % 2 != 0 {
        return Err(bad());
    }
    let mut f = 0u8;
    for i in (0..s.len()).step_by(2) {
        f |= match s.get(i..i + 2).ok_or_else(bad)? {
            "OI" => 0x1,
            "CI" => 0x2,
            "NP" => 0x4,
            "IO" => 0x8,
            "ID" => 0x10,
            _ => return Err(bad()),
        };
    }
    Ok(AceFlags(f))
}

fn parse_ace(body: &str, lenient: bool) -> Result<Ace, SddlError> {
    let parts: Vec<&str> = body.split(';').collect();
    if parts.len() != 6 {
        return Err(SddlError { at: body.into(), what: "ACE field count" });
    }
    let kind = match parts[0] {
        "A" => AceKind::Allow,
        "D" => AceKind::Deny,
        _ => return Err(SddlError { at: body.into(), what: "ACE type other than allow/deny" }),
    };
    if !parts[3].is_empty() || !parts[4].is_empty() {
        return Err(SddlError { at: body.into(), what: "object ACE" });
    }
    Ok(Ace {
        kind,
        flags: parse_flags(parts[1])?,
        mask: parse_rights(parts[2])?,
        sid: match parse_sid(parts[5]) {
            Ok(s) => s,
            Err(_) if lenient => Sid::unresolved(),
            Err(e) => return Err(e),
        },
    })
}

/// Parses the owner and DACL of an SDDL string (group and SACL are ignored). Strict: every SID
/// must resolve, so the descriptor can be written back unchanged.
pub fn parse(sddl: &str) -> Result<SecurityDescriptor, SddlError> {
    parse_with(sddl, false)
}

/// Parses for the access model only: SIDs that cannot be resolved without the domain become
/// [`Sid::unresolved`] and an unresolvable owner becomes `None`. Never write the result back.
pub fn parse_for_model(sddl: &str) -> Result<SecurityDescriptor, SddlError> {
    parse_with(sddl, true)
}

fn parse_with(sddl: &str, lenient: bool) -> Result<SecurityDescriptor, SddlError> {
    let mut sd = SecurityDescriptor { owner: None, dacl: Some(Vec::new()), protected: false };
    let mut rest = sddl.trim();
    while !rest.is_empty() {
        let (tag, body) = rest.split_at(rest.find(':').ok_or(SddlError { at: rest.into(), what: "component" })? + 1);
        // A component ends where the next `X:` starts outside parentheses.
        let mut depth = 0;
        let mut end = body.len();
        for (i, c) in body.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                'O' | 'G' | 'D' | 'S' if depth == 0 && body[i..].chars().nth(1) == Some(':') && i > 0 => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let (value, next) = body.split_at(end);
        match tag {
            "O:" => {
                sd.owner = match parse_sid(value) {
                    Ok(s) => Some(s),
                    Err(_) if lenient => None,
                    Err(e) => return Err(e),
                }
            }
            "G:" | "S:" => {}
            "D:" => {
                let aces_at = value.find('(').unwrap_or(value.len());
                let flags = &value[..aces_at];
                if flags.contains("NO_ACCESS_CONTROL") {
                    sd.dacl = None;
                }
                sd.protected = flags.contains('P');
                let mut aces = Vec::new();
                for piece in value[aces_at..].split(')').filter(|p| !p.is_empty()) {
                    let body = piece.strip_prefix('(').ok_or(SddlError { at: piece.into(), what: "ACE" })?;
                    aces.push(parse_ace(body, lenient)?);
                }
                if sd.dacl.is_some() {
                    sd.dacl = Some(aces);
                }
            }
            _ => return Err(SddlError { at: tag.into(), what: "component" }),
        }
        rest = next;
    }
    Ok(sd)
}

fn render_flags(f: AceFlags) -> String {
    [
        (AceFlags::OI, "OI"),
        (AceFlags::CI, "CI"),
        (AceFlags::NP, "NP"),
        (AceFlags::IO, "IO"),
        (AceFlags::INHERITED, "ID"),
    ]
    .iter()
    .filter(|(bit, _)| f.has(*bit))
    .map(|(_, s)| *s)
    .collect()
}

/// One ACE as SDDL.
pub fn render_ace(ace: &Ace) -> String {
    let kind = match ace.kind {
        AceKind::Allow => "A",
        AceKind::Deny => "D",
    };
    format!("({kind};{};{:#x};;;{})", render_flags(ace.flags), ace.mask.0, ace.sid)
}

/// The `D:` component for the *explicit* ACEs of `sd`, in canonical order. Inherited ACEs are
/// left out: `SetSecurityInfo` recomputes them from the parent unless the DACL is protected.
pub fn render_dacl(sd: &SecurityDescriptor) -> String {
    match &sd.dacl {
        None => "D:NO_ACCESS_CONTROL".into(),
        Some(_) => {
            let explicit = crate::acl_model::canonical_order(&sd.explicit());
            let flags = if sd.protected { "PAI" } else { "AI" };
            format!("D:{flags}{}", explicit.iter().map(render_ace).collect::<String>())
        }
    }
}

/// `sd` with `add` merged into its explicit ACEs (no duplicates) and `remove` taken out.
pub fn merge(sd: &SecurityDescriptor, add: &[Ace], remove: &[Ace]) -> SecurityDescriptor {
    let mut explicit: Vec<Ace> = sd.explicit().into_iter().filter(|a| !remove.contains(a)).collect();
    for a in add {
        if !explicit.contains(a) {
            explicit.push(a.clone());
        }
    }
    let inherited = sd.dacl.iter().flatten().filter(|a| a.is_inherited()).cloned();
    let all: Vec<Ace> = explicit.into_iter().chain(inherited).collect();
    SecurityDescriptor {
        owner: sd.owner.clone(),
        dacl: Some(crate::acl_model::canonical_order(&all)),
        protected: sd.protected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_windows_prints_for_a_profile_folder() {
        let s = "O:S-1-5-21-1-2-3-1001G:S-1-5-21-1-2-3-513D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;S-1-5-21-1-2-3-1001)(A;OICIID;0x1200a9;;;BU)";
        let sd = parse(s).unwrap();
        assert_eq!(sd.owner, Some("S-1-5-21-1-2-3-1001".parse().unwrap()));
        assert!(sd.protected);
        let dacl = sd.dacl.as_ref().unwrap();
        assert_eq!(dacl.len(), 4);
        assert_eq!(dacl[0].sid, Sid::local_system());
        assert_eq!(dacl[0].mask, AccessMask::FILE_ALL_ACCESS);
        assert_eq!(dacl[0].flags, AceFlags::TREE);
        assert!(dacl[3].is_inherited());
        assert_eq!(dacl[3].mask, AccessMask::READ_GRANT);
    }

    #[test]
    fn parses_directory_service_letters_null_dacl_and_rejects_object_aces() {
        let sd = parse("D:(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;WD)").unwrap();
        assert_eq!(sd.dacl.unwrap()[0].mask.0, 0x000f_01ff);
        assert_eq!(parse("D:NO_ACCESS_CONTROL").unwrap().dacl, None);
        assert!(parse("D:(OA;;CC;bf967aba-0de6-11d0-a285-00aa003049e2;;WD)").is_err());
        assert!(parse("D:(XA;;FA;;;WD)").is_err());
        assert!(parse("D:(A;;FA;;;DA)").is_err(), "domain-relative aliases need the domain");
    }

    #[test]
    fn domain_relative_aliases_are_unresolved_for_the_model_and_refused_for_writing() {
        let s = "O:LAD:(D;;FA;;;DG)(A;OICI;FA;;;DU)(A;;FA;;;SY)";
        assert!(parse(s).is_err(), "cannot be written back faithfully");
        let sd = parse_for_model(s).unwrap();
        assert_eq!(sd.owner, None);
        let dacl = sd.dacl.unwrap();
        assert_eq!(dacl[0].sid, Sid::unresolved());
        assert_eq!(dacl[1].sid, Sid::unresolved());
        assert_eq!(dacl[2].sid, Sid::local_system());
    }

    #[test]
    fn golden_render_and_merge() {
        let w: Sid = "S-1-5-21-9-9-9-5000".parse().unwrap();
        let base = parse("O:BAD:AI(A;OICIID;FA;;;SY)").unwrap();
        let merged = merge(
            &base,
            &[
                Ace::allow(w.clone(), AccessMask::ROOT_GRANT, AceFlags::TREE | AceFlags::IO),
                Ace::deny(w.clone(), AccessMask::DELETE, AceFlags::NONE),
            ],
            &[],
        );
        assert_eq!(
            render_dacl(&merged),
            "D:AI(D;;0x10000;;;S-1-5-21-9-9-9-5000)(A;OICIIO;0x1301bf;;;S-1-5-21-9-9-9-5000)"
        );
        let back = merge(&merged, &[], &[Ace::deny(w, AccessMask::DELETE, AceFlags::NONE)]);
        assert_eq!(back.explicit().len(), 1);
        let again = parse(&format!("O:BA{}", render_dacl(&merged))).unwrap();
        assert_eq!(again.explicit(), merged.explicit());
    }
}
