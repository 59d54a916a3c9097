//! The `sandflow:task/cache` functions and resources a guest imports,
//! linked by hand: keys are read in place and bounded before they are
//! copied, and a written chunk is copied once, straight from guest memory
//! into the upload. What an attempt may do is [`AttemptCache`]'s.

use bytes::Bytes;
use futures_util::future::BoxFuture;
use wasmtime::component::{LinkerInstance, Resource, ResourceType, WasmList, WasmStr};
use wasmtime::{Result, StoreContextMut};

use super::cache::{AttemptCache, Reader, Writer};
use super::host::HostState;
use crate::model::{CACHE_CHUNK_BYTES, MAX_KEY_BYTES};

type Store<'a> = StoreContextMut<'a, HostState>;
type Answer<T> = std::result::Result<T, String>;

/// A key (or prefix) from guest memory: copied only when it is short
/// enough to be one.
fn key_text(store: &Store<'_>, key: &WasmStr) -> Result<Answer<String>> {
    let text = key.to_str(store)?;
    if text.len() > MAX_KEY_BYTES {
        return Ok(Err(format!(
            "a cache key has at most {MAX_KEY_BYTES} bytes; this one has {}",
            text.len()
        )));
    }
    Ok(Ok(text.into_owned()))
}

/// The answer of a call the attempt may make (`Ok`, awaited), or why not.
async fn settle<T>(asked: Answer<BoxFuture<'static, Answer<T>>>) -> Answer<T> {
    match asked {
        Ok(answer) => answer.await,
        Err(e) => Err(e),
    }
}

fn cache<'a>(store: &'a mut Store<'_>) -> &'a mut AttemptCache {
    &mut store.data_mut().cache
}

/// Adds the `cache` interface to `inst`.
pub fn add(inst: &mut LinkerInstance<'_, HostState>) -> Result<()> {
    inst.resource("writer", ResourceType::host::<Writer>(), |mut store, rep| {
        store.data_mut().table.delete(Resource::<Writer>::new_own(rep))?;
        cache(&mut store).writers -= 1;
        Ok(())
    })?;
    inst.resource("reader", ResourceType::host::<Reader>(), |mut store, rep| {
        store.data_mut().table.delete(Resource::<Reader>::new_own(rep))?;
        cache(&mut store).readers -= 1;
        Ok(())
    })?;
    add_writes(inst)?;
    add_reads(inst)?;
    inst.func_wrap_async("contains", |mut store: Store<'_>, (key,): (WasmStr,)| {
        Box::new(async move {
            let asked = key_text(&store, &key)?.and_then(|k| cache(&mut store).contains(&k));
            Ok((settle(asked).await,))
        })
    })?;
    inst.func_wrap_async("delete", |mut store: Store<'_>, (key,): (WasmStr,)| {
        Box::new(async move {
            let asked = key_text(&store, &key)?.and_then(|k| cache(&mut store).delete(&k));
            Ok((settle(asked).await,))
        })
    })?;
    inst.func_wrap_async("list", |mut store: Store<'_>, (prefix, after): (WasmStr, Option<WasmStr>)| {
        Box::new(async move {
            let prefix = key_text(&store, &prefix)?;
            let after = after.map(|a| key_text(&store, &a)).transpose()?.transpose();
            let asked = prefix.and_then(|p| cache(&mut store).list(&p, after?));
            Ok((settle(asked).await,))
        })
    })?;
    Ok(())
}

/// `put`, `writer.write`, `writer.finish`.
fn add_writes(inst: &mut LinkerInstance<'_, HostState>) -> Result<()> {
    inst.func_wrap_async("put", |mut store: Store<'_>, (key,): (WasmStr,)| {
        Box::new(async move {
            let started = match key_text(&store, &key)?.and_then(|k| cache(&mut store).put(&k)) {
                Ok(started) => started.await,
                Err(e) => return Ok((Err(e),)),
            };
            match started {
                Ok(writer) => Ok((Ok(store.data_mut().table.push(writer)?),)),
                Err(e) => {
                    cache(&mut store).writers -= 1;
                    Ok((Err(e),))
                }
            }
        })
    })?;
    inst.func_wrap_async(
        "[method]writer.write",
        |mut store: Store<'_>, (writer, chunk): (Resource<Writer>, WasmList<u8>)| {
            Box::new(async move {
                let state = store.data_mut();
                let w = state.table.get_mut(&writer)?;
                if let Err(e) = state.cache.charge(w, chunk.len()) {
                    return Ok((Err(e),));
                }
                let bytes = Bytes::copy_from_slice(chunk.as_le_slice(&store));
                Ok((store.data_mut().table.get_mut(&writer)?.write(bytes).await,))
            })
        },
    )?;
    inst.func_wrap_async("[static]writer.finish", |mut store: Store<'_>, (writer,): (Resource<Writer>,)| {
        Box::new(async move {
            let w = store.data_mut().table.delete(writer)?;
            cache(&mut store).writers -= 1;
            Ok((w.finish().await,))
        })
    })?;
    Ok(())
}

/// `get`, `reader.size`, `reader.read`.
fn add_reads(inst: &mut LinkerInstance<'_, HostState>) -> Result<()> {
    inst.func_wrap_async("get", |mut store: Store<'_>, (key,): (WasmStr,)| {
        Box::new(async move {
            let asked = key_text(&store, &key)?.and_then(|k| cache(&mut store).get(&k));
            match settle(asked).await {
                Ok(Some(reader)) => {
                    cache(&mut store).readers += 1;
                    Ok((Ok(Some(store.data_mut().table.push(reader)?)),))
                }
                other => Ok((other.map(|_| None),)),
            }
        })
    })?;
    inst.func_wrap("[method]reader.size", |store: Store<'_>, (reader,): (Resource<Reader>,)| {
        Ok((store.data().table.get(&reader)?.size(),))
    })?;
    inst.func_wrap_async(
        "[method]reader.read",
        |mut store: Store<'_>, (reader, max): (Resource<Reader>, u32)| {
            Box::new(async move {
                let max = max.min(CACHE_CHUNK_BYTES as u32);
                Ok((store.data_mut().table.get_mut(&reader)?.read(max).await,))
            })
        },
    )?;
    Ok(())
}
