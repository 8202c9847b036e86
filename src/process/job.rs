//! Windows Job Objects: each child bprof starts is placed in a job of its own that kills what is
//! in it when its last handle closes (`JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`, as cargo does for
//! its children). bprof holds the only handle, so however bprof ends (returns, panics, is
//! killed), Windows closes the handle and ends the child with everything it started (az.cmd
//! runs cmd.exe, which runs python); stopping a child terminates its job, the whole tree.
//! Processes a child starts after it joined are in the job too.

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
    SetInformationJobObject, TerminateJobObject,
};
use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_SET_QUOTA, PROCESS_TERMINATE};

/// A job that kills its processes when dropped.
pub struct Job(HANDLE);

// SAFETY: a job handle is a kernel handle, usable from any thread.
unsafe impl Send for Job {}
// SAFETY: as above; the calls made with it are thread-safe.
unsafe impl Sync for Job {}

impl Job {
    /// A new job holding process `pid`, or `None` when Windows refuses (then stopping falls
    /// back to ending the process alone).
    pub fn holding(pid: u32) -> Option<Job> {
        // SAFETY: every handle is checked before use and closed once (the job's by Drop).
        unsafe {
            let job = Job(CreateJobObjectW(std::ptr::null(), std::ptr::null()));
            if job.0.is_null() {
                return None;
            }
            let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = std::mem::zeroed();
            info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
            let size = u32::try_from(std::mem::size_of_val(&info)).ok()?;
            if SetInformationJobObject(
                job.0,
                JobObjectExtendedLimitInformation,
                (&raw const info).cast(),
                size,
            ) == 0
            {
                return None;
            }
            let process = OpenProcess(PROCESS_SET_QUOTA | PROCESS_TERMINATE, 0, pid);
            if process.is_null() {
                return None;
            }
            let joined = AssignProcessToJobObject(job.0, process) != 0;
            CloseHandle(process);
            joined.then_some(job)
        }
    }

    /// Ends every process in the job.
    pub fn terminate(&self) {
        // SAFETY: the handle is valid for the job's life.
        unsafe {
            TerminateJobObject(self.0, 1);
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // SAFETY: closed once; with KILL_ON_JOB_CLOSE this ends whatever is still in it.
        unsafe {
            CloseHandle(self.0);
        }
    }
}
