//! Who may change a file or a directory on Windows, where mode bits mean nothing: the owner SID
//! and the allow entries of the DACL, read from the system ([`access`]) and judged by
//! [`judge`], a pure function unit-tested on every OS. Unix keeps its mode-bit checks where
//! they are (`profile/discover.rs`, `profile/trust.rs`).

/// A principal, as far as the checks care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// The person running bprof.
    Me,
    /// BUILTIN\Administrators.
    Admins,
    /// NT AUTHORITY\SYSTEM.
    System,
    /// Everyone.
    Everyone,
    /// BUILTIN\Users.
    Users,
    /// NT AUTHORITY\Authenticated Users.
    AuthenticatedUsers,
    /// Anyone else, by SID.
    Other(String),
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::Me => write!(f, "you"),
            Who::Admins => write!(f, "Administrators"),
            Who::System => write!(f, "SYSTEM"),
            Who::Everyone => write!(f, "Everyone"),
            Who::Users => write!(f, "Users"),
            Who::AuthenticatedUsers => write!(f, "Authenticated Users"),
            Who::Other(sid) => write!(f, "{sid}"),
        }
    }
}

/// Who owns a path, and who an allow entry of its DACL lets write it (a missing DACL lets
/// Everyone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub owner: Who,
    pub writers: Vec<Who>,
}

/// How strict the check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The owner only (as Git for Windows checks a repository): `C:\` lets Authenticated
    /// Users create folders, which then inherit their write access, so `C:\src\team` must pass.
    Owner,
    /// The owner, and nobody but the person, Administrators and SYSTEM may write (the user
    /// config and `trust.json` in `%APPDATA%\bprof`).
    Private,
}

fn trusted(w: &Who) -> bool {
    matches!(w, Who::Me | Who::Admins | Who::System)
}

/// Ok, or why `shown` may be changed by someone else, with the fix.
pub fn judge(shown: &str, a: &Access, rule: Rule) -> Result<(), String> {
    if !trusted(&a.owner) {
        return Err(format!(
            "{shown} is owned by {} (fix: take ownership, e.g. `takeown /f \"{shown}\"`)",
            a.owner
        ));
    }
    if rule == Rule::Private
        && let Some(w) = a.writers.iter().find(|w| !trusted(w))
    {
        return Err(format!(
            "{shown} can be changed by {w} (fix: remove that entry in its Security properties, or `icacls \"{shown}\" /inheritance:r /grant:r %USERNAME%:F`)"
        ));
    }
    Ok(())
}

#[cfg(windows)]
pub use windows::{access, make_private};

/// Reads who may change `path` and judges it by `rule`: Ok, or why not.
#[cfg(windows)]
pub fn check(path: &std::path::Path, rule: Rule) -> Result<(), String> {
    judge(&path.display().to_string(), &access(path)?, rule)
}

#[cfg(windows)]
mod windows {
    use std::os::windows::ffi::OsStrExt;
    use std::path::Path;

    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, LocalFree};
    use windows_sys::Win32::Security::Authorization::{
        ConvertSidToStringSidW, GetNamedSecurityInfoW, SE_FILE_OBJECT, SetNamedSecurityInfoW,
    };
    use windows_sys::Win32::Security::{
        ACCESS_ALLOWED_ACE, ACE_HEADER, ACL, ACL_REVISION, ACL_SIZE_INFORMATION,
        AclSizeInformation, AddAccessAllowedAce, DACL_SECURITY_INFORMATION, EqualSid, GetAce,
        GetAclInformation, GetLengthSid, GetTokenInformation, INHERIT_ONLY_ACE, InitializeAcl,
        IsWellKnownSid, OWNER_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION,
        PSECURITY_DESCRIPTOR, PSID, TOKEN_QUERY, TOKEN_USER, TokenUser, WELL_KNOWN_SID_TYPE,
        WinAuthenticatedUserSid, WinBuiltinAdministratorsSid, WinBuiltinUsersSid,
        WinLocalSystemSid, WinWorldSid,
    };
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

    use super::{Access, Who};

    /// Rights that change a file or what a directory holds.
    const WRITE: u32 = 0x2 // FILE_WRITE_DATA, FILE_ADD_FILE
        | 0x4 // FILE_APPEND_DATA, FILE_ADD_SUBDIRECTORY
        | 0x40 // FILE_DELETE_CHILD
        | 0x1_0000 // DELETE
        | 0x4_0000 // WRITE_DAC
        | 0x8_0000 // WRITE_OWNER
        | 0x1000_0000 // GENERIC_ALL
        | 0x4000_0000; // GENERIC_WRITE

    /// All rights on a file.
    const FILE_ALL_ACCESS: u32 = 0x1F_01FF;

    fn wide(p: &Path) -> Vec<u16> {
        p.as_os_str().encode_wide().chain([0]).collect()
    }

    /// The current user's SID, in a buffer that holds it.
    fn my_sid() -> Option<Vec<u64>> {
        // SAFETY: the token handle is checked and closed; the buffer is sized by the first call.
        unsafe {
            let mut token: HANDLE = std::ptr::null_mut();
            if OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) == 0 {
                return None;
            }
            let mut len = 0u32;
            GetTokenInformation(token, TokenUser, std::ptr::null_mut(), 0, &mut len);
            let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
            let ok = GetTokenInformation(token, TokenUser, buf.as_mut_ptr().cast(), len, &mut len);
            CloseHandle(token);
            (ok != 0).then_some(buf)
        }
    }

    fn sid_of(token_user: &[u64]) -> PSID {
        // SAFETY: the buffer holds a TOKEN_USER, whose SID points into the same buffer.
        unsafe { (*token_user.as_ptr().cast::<TOKEN_USER>()).User.Sid }
    }

    /// # Safety
    /// `sid` and `me` are valid SIDs.
    unsafe fn who(sid: PSID, me: PSID) -> Who {
        let known: [(WELL_KNOWN_SID_TYPE, Who); 5] = [
            (WinBuiltinAdministratorsSid, Who::Admins),
            (WinLocalSystemSid, Who::System),
            (WinWorldSid, Who::Everyone),
            (WinBuiltinUsersSid, Who::Users),
            (WinAuthenticatedUserSid, Who::AuthenticatedUsers),
        ];
        // SAFETY: the caller's SIDs; the string is freed once.
        unsafe {
            if EqualSid(sid, me) != 0 {
                return Who::Me;
            }
            for (kind, w) in known {
                if IsWellKnownSid(sid, kind) != 0 {
                    return w;
                }
            }
            let mut s: *mut u16 = std::ptr::null_mut();
            if ConvertSidToStringSidW(sid, &mut s) == 0 || s.is_null() {
                return Who::Other("an unknown account".into());
            }
            let len = (0..).take_while(|&i| *s.add(i) != 0).count();
            let text = String::from_utf16_lossy(std::slice::from_raw_parts(s, len));
            LocalFree(s.cast());
            Who::Other(text)
        }
    }

    /// The owner of `path` and who its DACL lets write it.
    pub fn access(path: &Path) -> Result<Access, String> {
        let me_buf = my_sid().ok_or("cannot read who you are (the process token)")?;
        let me = sid_of(&me_buf);
        let name = wide(path);
        let mut owner: PSID = std::ptr::null_mut();
        let mut dacl: *mut ACL = std::ptr::null_mut();
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: out-pointers are ours; owner and dacl point into `sd`, freed once at the end.
        unsafe {
            let rc = GetNamedSecurityInfoW(
                name.as_ptr(),
                SE_FILE_OBJECT,
                OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                &mut owner,
                std::ptr::null_mut(),
                &mut dacl,
                std::ptr::null_mut(),
                &mut sd,
            );
            if rc != 0 {
                return Err(format!(
                    "cannot read who owns {} (error {rc})",
                    path.display()
                ));
            }
            let result = (|| {
                let owner = if owner.is_null() {
                    Who::Other("nobody".into())
                } else {
                    who(owner, me)
                };
                let mut writers = Vec::new();
                if dacl.is_null() {
                    writers.push(Who::Everyone);
                    return Access { owner, writers };
                }
                let mut info: ACL_SIZE_INFORMATION = std::mem::zeroed();
                let size = std::mem::size_of::<ACL_SIZE_INFORMATION>() as u32;
                if GetAclInformation(dacl, (&raw mut info).cast(), size, AclSizeInformation) == 0 {
                    writers.push(Who::Other("an unreadable access list".into()));
                    return Access { owner, writers };
                }
                for i in 0..info.AceCount {
                    let mut ace: *mut core::ffi::c_void = std::ptr::null_mut();
                    if GetAce(dacl, i, &mut ace) == 0 || ace.is_null() {
                        continue;
                    }
                    let header = &*ace.cast::<ACE_HEADER>();
                    // ACCESS_ALLOWED_ACE_TYPE; inherit-only entries apply to children only
                    if header.AceType != 0 || u32::from(header.AceFlags) & INHERIT_ONLY_ACE != 0 {
                        continue;
                    }
                    let allowed = &*ace.cast::<ACCESS_ALLOWED_ACE>();
                    if allowed.Mask & WRITE != 0 {
                        let sid: PSID = (&raw const allowed.SidStart).cast_mut().cast();
                        writers.push(who(sid, me));
                    }
                }
                Access { owner, writers }
            })();
            LocalFree(sd);
            Ok(result)
        }
    }

    /// Gives `path` a DACL of one entry, the person's, with inheritance cut: only the person
    /// can read or change it.
    pub fn make_private(path: &Path) -> std::io::Result<()> {
        let fail = |what: &str| std::io::Error::other(format!("{what} ({})", path.display()));
        let me_buf = my_sid().ok_or_else(|| fail("cannot read who you are"))?;
        let me = sid_of(&me_buf);
        // SAFETY: the ACL buffer is sized for one entry with this SID and aligned (u64s).
        unsafe {
            let size = std::mem::size_of::<ACL>()
                + std::mem::size_of::<ACCESS_ALLOWED_ACE>()
                + GetLengthSid(me) as usize;
            let mut buf = vec![0u64; size.div_ceil(8)];
            let acl = buf.as_mut_ptr().cast::<ACL>();
            let size = u32::try_from(buf.len() * 8).map_err(|_| fail("an ACL too large"))?;
            if InitializeAcl(acl, size, ACL_REVISION) == 0
                || AddAccessAllowedAce(acl, ACL_REVISION, FILE_ALL_ACCESS, me) == 0
            {
                return Err(fail("cannot build an owner-only access list"));
            }
            let name = wide(path);
            let rc = SetNamedSecurityInfoW(
                name.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                acl,
                std::ptr::null(),
            );
            if rc != 0 {
                return Err(fail(&format!("cannot set its access list (error {rc})")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(owner: Who, writers: &[Who]) -> Access {
        Access {
            owner,
            writers: writers.to_vec(),
        }
    }

    #[test]
    fn the_owner_rule_takes_you_administrators_or_system_only() {
        for owner in [Who::Me, Who::Admins, Who::System] {
            // C:\src\team: Authenticated Users may write by inheritance from C:\, yet it passes
            let a = acc(owner, &[Who::Me, Who::AuthenticatedUsers, Who::Users]);
            assert_eq!(judge("C:\\src\\team", &a, Rule::Owner), Ok(()));
        }
        let e = judge(
            "C:\\x",
            &acc(Who::Other("S-1-5-21-1-2-3-1001".into()), &[]),
            Rule::Owner,
        )
        .unwrap_err();
        assert!(
            e.contains("owned by S-1-5-21-1-2-3-1001") && e.contains("takeown"),
            "{e}"
        );
        assert!(judge("C:\\x", &acc(Who::Everyone, &[]), Rule::Owner).is_err());
    }

    #[test]
    fn private_refuses_any_other_writer() {
        let ok = acc(Who::Me, &[Who::Me, Who::Admins, Who::System]);
        assert_eq!(judge("t.json", &ok, Rule::Private), Ok(()));
        for other in [
            Who::Everyone,
            Who::Users,
            Who::AuthenticatedUsers,
            Who::Other("S-1-5-21-9".into()),
        ] {
            let shown = other.to_string();
            let e = judge("t.json", &acc(Who::Me, &[Who::Me, other]), Rule::Private).unwrap_err();
            assert!(e.contains(&shown) && e.contains("icacls"), "{e}");
        }
        // and the owner rule first
        assert!(judge("t.json", &acc(Who::Users, &[Who::Me]), Rule::Private).is_err());
    }
}
