//! wasmplug's WASI file-system forwarder.
//!
//! Exports every function of `wasi:filesystem/types` and `wasi:filesystem/preopens`
//! as a plain function of `wasmplug:wasi-forwarder/filesystem` (methods take their
//! `self` handle first) that calls the imported function with the same arguments and
//! returns what it returned. wasmplug instantiates it in a plugin's Store against
//! wasmtime's own WASI, and serves the plugin's `wasi:filesystem` through it, so that
//! it sees every descriptor opened and dropped.

wit_bindgen::generate!({
    path: "wit",
    world: "forwarder",
    generate_all,
});

use exports::wasmplug::wasi_forwarder::filesystem::Guest;
use wasi::filesystem::preopens;
use wasi::filesystem::types::{
    Advice, Descriptor, DescriptorFlags, DescriptorStat, DescriptorType, DirectoryEntry,
    DirectoryEntryStream, ErrorCode, Filesize, MetadataHashValue, NewTimestamp, OpenFlags,
    PathFlags,
};
use wasi::io::poll::Pollable;
use wasi::io::streams::{Error, InputStream, OutputStream, StreamError};

struct Forwarder;

impl Guest for Forwarder {
    fn read_via_stream(d: &Descriptor, offset: Filesize) -> Result<InputStream, ErrorCode> {
        d.read_via_stream(offset)
    }
    fn write_via_stream(d: &Descriptor, offset: Filesize) -> Result<OutputStream, ErrorCode> {
        d.write_via_stream(offset)
    }
    fn append_via_stream(d: &Descriptor) -> Result<OutputStream, ErrorCode> {
        d.append_via_stream()
    }
    fn advise(
        d: &Descriptor,
        offset: Filesize,
        length: Filesize,
        advice: Advice,
    ) -> Result<(), ErrorCode> {
        d.advise(offset, length, advice)
    }
    fn sync_data(d: &Descriptor) -> Result<(), ErrorCode> {
        d.sync_data()
    }
    fn get_flags(d: &Descriptor) -> Result<DescriptorFlags, ErrorCode> {
        d.get_flags()
    }
    fn get_type(d: &Descriptor) -> Result<DescriptorType, ErrorCode> {
        d.get_type()
    }
    fn set_size(d: &Descriptor, size: Filesize) -> Result<(), ErrorCode> {
        d.set_size(size)
    }
    fn set_times(
        d: &Descriptor,
        access: NewTimestamp,
        modification: NewTimestamp,
    ) -> Result<(), ErrorCode> {
        d.set_times(access, modification)
    }
    fn read(
        d: &Descriptor,
        length: Filesize,
        offset: Filesize,
    ) -> Result<(Vec<u8>, bool), ErrorCode> {
        d.read(length, offset)
    }
    fn write(d: &Descriptor, buffer: Vec<u8>, offset: Filesize) -> Result<Filesize, ErrorCode> {
        d.write(&buffer, offset)
    }
    fn read_directory(d: &Descriptor) -> Result<DirectoryEntryStream, ErrorCode> {
        d.read_directory()
    }
    fn sync(d: &Descriptor) -> Result<(), ErrorCode> {
        d.sync()
    }
    fn create_directory_at(d: &Descriptor, path: String) -> Result<(), ErrorCode> {
        d.create_directory_at(&path)
    }
    fn stat(d: &Descriptor) -> Result<DescriptorStat, ErrorCode> {
        d.stat()
    }
    fn stat_at(
        d: &Descriptor,
        flags: PathFlags,
        path: String,
    ) -> Result<DescriptorStat, ErrorCode> {
        d.stat_at(flags, &path)
    }
    fn set_times_at(
        d: &Descriptor,
        flags: PathFlags,
        path: String,
        access: NewTimestamp,
        modification: NewTimestamp,
    ) -> Result<(), ErrorCode> {
        d.set_times_at(flags, &path, access, modification)
    }
    fn link_at(
        d: &Descriptor,
        old_flags: PathFlags,
        old_path: String,
        new_descriptor: &Descriptor,
        new_path: String,
    ) -> Result<(), ErrorCode> {
        d.link_at(old_flags, &old_path, new_descriptor, &new_path)
    }
    fn open_at(
        d: &Descriptor,
        path_flags: PathFlags,
        path: String,
        open_flags: OpenFlags,
        flags: DescriptorFlags,
    ) -> Result<Descriptor, ErrorCode> {
        d.open_at(path_flags, &path, open_flags, flags)
    }
    fn readlink_at(d: &Descriptor, path: String) -> Result<String, ErrorCode> {
        d.readlink_at(&path)
    }
    fn remove_directory_at(d: &Descriptor, path: String) -> Result<(), ErrorCode> {
        d.remove_directory_at(&path)
    }
    fn rename_at(
        d: &Descriptor,
        old_path: String,
        new_descriptor: &Descriptor,
        new_path: String,
    ) -> Result<(), ErrorCode> {
        d.rename_at(&old_path, new_descriptor, &new_path)
    }
    fn symlink_at(d: &Descriptor, old_path: String, new_path: String) -> Result<(), ErrorCode> {
        d.symlink_at(&old_path, &new_path)
    }
    fn unlink_file_at(d: &Descriptor, path: String) -> Result<(), ErrorCode> {
        d.unlink_file_at(&path)
    }
    fn is_same_object(d: &Descriptor, other: &Descriptor) -> bool {
        d.is_same_object(other)
    }
    fn metadata_hash(d: &Descriptor) -> Result<MetadataHashValue, ErrorCode> {
        d.metadata_hash()
    }
    fn metadata_hash_at(
        d: &Descriptor,
        flags: PathFlags,
        path: String,
    ) -> Result<MetadataHashValue, ErrorCode> {
        d.metadata_hash_at(flags, &path)
    }
    fn read_directory_entry(s: &DirectoryEntryStream) -> Result<Option<DirectoryEntry>, ErrorCode> {
        s.read_directory_entry()
    }
    fn filesystem_error_code(err: &Error) -> Option<ErrorCode> {
        wasi::filesystem::types::filesystem_error_code(err)
    }
    fn get_directories() -> Vec<(Descriptor, String)> {
        preopens::get_directories()
    }
}

impl exports::wasmplug::wasi_forwarder::streams::Guest for Forwarder {
    fn input_read(s: &InputStream, len: u64) -> Result<Vec<u8>, StreamError> {
        s.read(len)
    }
    fn input_blocking_read(s: &InputStream, len: u64) -> Result<Vec<u8>, StreamError> {
        s.blocking_read(len)
    }
    fn input_skip(s: &InputStream, len: u64) -> Result<u64, StreamError> {
        s.skip(len)
    }
    fn input_blocking_skip(s: &InputStream, len: u64) -> Result<u64, StreamError> {
        s.blocking_skip(len)
    }
    fn input_subscribe(s: &InputStream) -> Pollable {
        s.subscribe()
    }
    fn output_check_write(s: &OutputStream) -> Result<u64, StreamError> {
        s.check_write()
    }
    fn output_write(s: &OutputStream, contents: Vec<u8>) -> Result<(), StreamError> {
        s.write(&contents)
    }
    fn output_blocking_write_and_flush(
        s: &OutputStream,
        contents: Vec<u8>,
    ) -> Result<(), StreamError> {
        s.blocking_write_and_flush(&contents)
    }
    fn output_flush(s: &OutputStream) -> Result<(), StreamError> {
        s.flush()
    }
    fn output_blocking_flush(s: &OutputStream) -> Result<(), StreamError> {
        s.blocking_flush()
    }
    fn output_subscribe(s: &OutputStream) -> Pollable {
        s.subscribe()
    }
    fn output_write_zeroes(s: &OutputStream, len: u64) -> Result<(), StreamError> {
        s.write_zeroes(len)
    }
    fn output_blocking_write_zeroes_and_flush(
        s: &OutputStream,
        len: u64,
    ) -> Result<(), StreamError> {
        s.blocking_write_zeroes_and_flush(len)
    }
    fn output_splice(s: &OutputStream, src: &InputStream, len: u64) -> Result<u64, StreamError> {
        s.splice(src, len)
    }
    fn output_blocking_splice(
        s: &OutputStream,
        src: &InputStream,
        len: u64,
    ) -> Result<u64, StreamError> {
        s.blocking_splice(src, len)
    }
    fn get_stdin() -> InputStream {
        wasi::cli::stdin::get_stdin()
    }
    fn get_stdout() -> OutputStream {
        wasi::cli::stdout::get_stdout()
    }
    fn get_stderr() -> OutputStream {
        wasi::cli::stderr::get_stderr()
    }
}

export!(Forwarder);
