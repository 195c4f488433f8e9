//! What the safe `hdf5` API does not cover: strings of any storage (fixed or variable
//! length, as a dataset or as one field of a compound dataset) and single fields of the
//! compound tables of legacy AnnData files. All calls hold libhdf5's global lock.

use super::Column;
use anyhow::{bail, Result};
use hdf5::types::TypeDescriptor;
use hdf5::Dataset;
use hdf5_sys::h5::herr_t;
use hdf5_sys::h5d::{H5Dget_space, H5Dget_type, H5Dread, H5Dvlen_reclaim};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::H5P_DEFAULT;
use hdf5_sys::h5s::{H5Sclose, H5Sget_simple_extent_npoints, H5S_ALL};
use hdf5_sys::h5t::{
    H5T_class_t, H5Tclose, H5Tcopy, H5Tcreate, H5Tget_class, H5Tget_cset, H5Tget_member_index, H5Tget_member_type,
    H5Tget_size, H5Tinsert, H5Tis_variable_str, H5Tset_cset, H5Tset_size, H5T_VARIABLE,
};
use std::ffi::{c_char, CStr, CString};

/// Closes an HDF5 id on drop.
struct Id(hid_t, unsafe extern "C" fn(hid_t) -> herr_t);

impl Drop for Id {
    fn drop(&mut self) {
        if self.0 >= 0 {
            // SAFETY: the id was returned by libhdf5 and is closed once.
            unsafe { (self.1)(self.0) };
        }
    }
}

fn check(id: hid_t, what: &str) -> Result<hid_t> {
    if id < 0 {
        bail!("HDF5 error: {what}");
    }
    Ok(id)
}

/// Field names of a compound dataset.
pub(crate) fn compound_fields(ds: &Dataset) -> Result<Vec<String>> {
    match ds.dtype()?.to_descriptor()? {
        TypeDescriptor::Compound(c) => Ok(c.fields.into_iter().map(|f| f.name).collect()),
        other => bail!("expected a compound (table) dataset, found {other:?}"),
    }
}

fn npoints(ds: hid_t) -> Result<usize> {
    // SAFETY: `ds` is a valid dataset id; the dataspace id is closed by `Id`.
    unsafe {
        let space = Id(check(H5Dget_space(ds), "dataspace")?, H5Sclose);
        let n = H5Sget_simple_extent_npoints(space.0);
        if n < 0 {
            bail!("HDF5 error: number of points");
        }
        Ok(n as usize)
    }
}

/// The file type of `ds`, or of its compound member `field`.
fn member_type(ds: hid_t, field: Option<&str>) -> Result<Id> {
    // SAFETY: valid ids; every returned id is wrapped for closing.
    unsafe {
        let t = Id(check(H5Dget_type(ds), "dataset type")?, H5Tclose);
        match field {
            None => Ok(t),
            Some(name) => {
                let c = CString::new(name)?;
                let idx = H5Tget_member_index(t.0, c.as_ptr());
                if idx < 0 {
                    bail!("no field `{name}`");
                }
                Ok(Id(check(H5Tget_member_type(t.0, idx as u32), "member type")?, H5Tclose))
            }
        }
    }
}

/// Wraps a memory type in a one-field compound (to read one field of a compound).
fn wrap(mem: &Id, field: Option<&str>) -> Result<Option<Id>> {
    let Some(name) = field else { return Ok(None) };
    // SAFETY: valid type ids; the new compound is closed by `Id`.
    unsafe {
        let size = H5Tget_size(mem.0);
        let c = Id(check(H5Tcreate(H5T_class_t::H5T_COMPOUND, size), "compound type")?, H5Tclose);
        let n = CString::new(name)?;
        if H5Tinsert(c.0, n.as_ptr(), 0, mem.0) < 0 {
            bail!("HDF5 error: compound member");
        }
        Ok(Some(c))
    }
}

/// Strings of a string dataset, or of the string field `field` of a compound dataset.
pub(crate) fn read_strings(ds: &Dataset, field: Option<&str>) -> Result<Vec<Option<String>>> {
    let _lock = hdf5_sys::LOCK.lock();
    let id = ds.id();
    let n = npoints(id)?;
    let ftype = member_type(id, field)?;
    // SAFETY: types and buffers are sized from libhdf5's own answers; variable-length
    // strings are reclaimed with the same type and dataspace they were read with.
    unsafe {
        if H5Tget_class(ftype.0) != H5T_class_t::H5T_STRING {
            bail!("expected strings{}", field.map(|f| format!(" in field `{f}`")).unwrap_or_default());
        }
        let cset = H5Tget_cset(ftype.0);
        if H5Tis_variable_str(ftype.0) > 0 {
            let mem = Id(check(H5Tcopy(*hdf5_sys::h5t::H5T_C_S1), "string type")?, H5Tclose);
            H5Tset_size(mem.0, H5T_VARIABLE);
            H5Tset_cset(mem.0, cset);
            let wrapped = wrap(&mem, field)?;
            let tid = wrapped.as_ref().unwrap_or(&mem).0;
            let mut ptrs: Vec<*mut c_char> = vec![std::ptr::null_mut(); n];
            if n > 0 && H5Dread(id, tid, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.as_mut_ptr().cast()) < 0 {
                bail!("HDF5 error: reading strings");
            }
            let out = ptrs
                .iter()
                .map(|&p| (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned()))
                .collect();
            if n > 0 {
                let space = Id(check(H5Dget_space(id), "dataspace")?, H5Sclose);
                H5Dvlen_reclaim(tid, space.0, H5P_DEFAULT, ptrs.as_mut_ptr().cast());
            }
            Ok(out)
        } else {
            let size = H5Tget_size(ftype.0);
            let mem = Id(check(H5Tcopy(ftype.0), "string type")?, H5Tclose);
            let wrapped = wrap(&mem, field)?;
            let tid = wrapped.as_ref().unwrap_or(&mem).0;
            let mut buf = vec![0u8; n * size];
            if n > 0 && H5Dread(id, tid, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.as_mut_ptr().cast()) < 0 {
                bail!("HDF5 error: reading strings");
            }
            Ok(buf
                .chunks(size.max(1))
                .take(n)
                .map(|s| {
                    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
                    Some(String::from_utf8_lossy(&s[..end]).trim_end().to_string())
                })
                .collect())
        }
    }
}

/// A numeric field of a compound dataset, converted by libhdf5 to `T`'s native type.
fn read_numeric_field<T: Copy + Default>(ds: &Dataset, field: &str, native: hid_t) -> Result<Vec<T>> {
    let _lock = hdf5_sys::LOCK.lock();
    let id = ds.id();
    let n = npoints(id)?;
    // SAFETY: `native` is a native numeric type of T's size; the buffer holds n values.
    unsafe {
        let mem = Id(check(H5Tcopy(native), "type")?, H5Tclose);
        let wrapped = wrap(&mem, Some(field))?.expect("field given");
        let mut out = vec![T::default(); n];
        if n > 0 && H5Dread(id, wrapped.0, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.as_mut_ptr().cast()) < 0 {
            bail!("HDF5 error: reading field `{field}`");
        }
        Ok(out)
    }
}

/// One column of a legacy compound table.
pub(crate) fn read_compound_column(ds: &Dataset, field: &str) -> Result<Column> {
    let TypeDescriptor::Compound(c) = ds.dtype()?.to_descriptor()? else { bail!("not a compound table") };
    let f = c.fields.iter().find(|f| f.name == field).ok_or_else(|| anyhow::anyhow!("no field `{field}`"))?;
    Ok(match &f.ty {
        TypeDescriptor::Float(_) => Column::Float(read_numeric_field::<f64>(ds, field, *hdf5_sys::h5t::H5T_NATIVE_DOUBLE)?),
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) => {
            Column::Int(read_numeric_field::<i64>(ds, field, *hdf5_sys::h5t::H5T_NATIVE_LLONG)?)
        }
        TypeDescriptor::Boolean | TypeDescriptor::Enum(_) => Column::Bool(
            read_numeric_field::<i64>(ds, field, *hdf5_sys::h5t::H5T_NATIVE_LLONG)?.into_iter().map(|x| x != 0).collect(),
        ),
        TypeDescriptor::VarLenUnicode | TypeDescriptor::VarLenAscii | TypeDescriptor::FixedAscii(_) | TypeDescriptor::FixedUnicode(_) => {
            Column::Str(read_strings(ds, Some(field))?)
        }
        other => bail!("unsupported type {other:?} for field `{field}`"),
    })
}

/// A field of a legacy `obsm` compound dataset holding a fixed-size array per row:
/// `(width, row-major values)`.
pub(crate) fn read_compound_array_field(ds: &Dataset, field: &str) -> Result<(usize, Vec<f64>)> {
    let TypeDescriptor::Compound(c) = ds.dtype()?.to_descriptor()? else { bail!("not a compound table") };
    let f = c.fields.iter().find(|f| f.name == field).ok_or_else(|| anyhow::anyhow!("no field `{field}`"))?;
    let width = match &f.ty {
        TypeDescriptor::FixedArray(_, w) => *w,
        TypeDescriptor::Float(_) | TypeDescriptor::Integer(_) => 1,
        other => bail!("unsupported obsm field type {other:?}"),
    };
    let _lock = hdf5_sys::LOCK.lock();
    let id = ds.id();
    let n = npoints(id)?;
    // SAFETY: an array type of `width` doubles wrapped as the one field read; the buffer
    // holds n * width doubles.
    unsafe {
        let base = *hdf5_sys::h5t::H5T_NATIVE_DOUBLE;
        let mem = if width == 1 {
            Id(check(H5Tcopy(base), "type")?, H5Tclose)
        } else {
            let dims = [width as u64];
            Id(check(hdf5_sys::h5t::H5Tarray_create2(base, 1, dims.as_ptr()), "array type")?, H5Tclose)
        };
        let wrapped = wrap(&mem, Some(field))?.expect("field given");
        let mut out = vec![0f64; n * width];
        if n > 0 && H5Dread(id, wrapped.0, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.as_mut_ptr().cast()) < 0 {
            bail!("HDF5 error: reading field `{field}`");
        }
        Ok((width, out))
    }
}

/// Categories: strings, or numbers printed as pandas would.
pub(crate) fn read_any_as_strings(ds: &Dataset) -> Result<Vec<String>> {
    match ds.dtype()?.to_descriptor()? {
        TypeDescriptor::Float(_) => Ok(ds.read_raw::<f64>()?.iter().map(|x| x.to_string()).collect()),
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) => {
            Ok(ds.read_raw::<i64>()?.iter().map(|x| x.to_string()).collect())
        }
        _ => Ok(read_strings(ds, None)?.into_iter().map(|s| s.unwrap_or_default()).collect()),
    }
}
