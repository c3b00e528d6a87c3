//! `Properties.Set` on a read-only property answers
//! `org.freedesktop.DBus.Error.PropertyReadOnly`, as the D-Bus specification
//! asks. zbus 6 answers UnknownProperty for a property without a setter, so the
//! interface is served wrapped in [`ReadOnly`], which passes everything through
//! and turns that one answer right: a Set of a property that Get knows is
//! read-only; one that Get does not know stays UnknownProperty.
//!
//! zbus calls its `Interface` trait unstable; the wrapper delegates every method,
//! so a new one in a zbus release shows up as a compile error here, not as a
//! silent change (Cargo.lock pins the version).

use std::collections::HashMap;
use zbus::message::Header;
use zbus::names::{InterfaceName, MemberName};
use zbus::object_server::{DispatchResult, Interface, SignalEmitter};
use zbus::zvariant::{OwnedVariant, Variant};
use zbus::{BoxDBusError, Connection, Message, ObjectServer, fdo};

/// An interface whose properties without a setter answer PropertyReadOnly to Set.
pub struct ReadOnly<I>(pub I);

impl<I> std::ops::Deref for ReadOnly<I> {
    type Target = I;
    fn deref(&self) -> &I {
        &self.0
    }
}

#[async_trait::async_trait]
impl<I: Interface> Interface for ReadOnly<I> {
    fn name() -> InterfaceName<'static> {
        I::name()
    }

    fn spawn_tasks_for_methods(&self) -> bool {
        self.0.spawn_tasks_for_methods()
    }

    async fn get(
        &self,
        property_name: &str,
        server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        emitter: &SignalEmitter<'_>,
    ) -> Option<Result<OwnedVariant, BoxDBusError>> {
        self.0
            .get(property_name, server, connection, header, emitter)
            .await
    }

    async fn get_all(
        &self,
        server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        emitter: &SignalEmitter<'_>,
    ) -> fdo::Result<HashMap<String, OwnedVariant>> {
        self.0.get_all(server, connection, header, emitter).await
    }

    fn set<'call>(
        &'call self,
        property_name: &'call str,
        value: &'call Variant<'_>,
        server: &'call ObjectServer,
        connection: &'call Connection,
        header: Option<&'call Header<'_>>,
        emitter: &'call SignalEmitter<'_>,
    ) -> DispatchResult<'call> {
        match self
            .0
            .set(property_name, value, server, connection, header, emitter)
        {
            DispatchResult::NotFound => DispatchResult::Async(Box::pin(async move {
                let known = self
                    .0
                    .get(property_name, server, connection, header, emitter)
                    .await
                    .is_some();
                Err(if known {
                    fdo::Error::PropertyReadOnly(format!("{property_name} is read-only"))
                } else {
                    fdo::Error::UnknownProperty(format!("Unknown property '{property_name}'"))
                }
                .into())
            })),
            other => other,
        }
    }

    async fn set_mut(
        &mut self,
        property_name: &str,
        value: &Variant<'_>,
        server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        emitter: &SignalEmitter<'_>,
    ) -> Option<Result<(), BoxDBusError>> {
        self.0
            .set_mut(property_name, value, server, connection, header, emitter)
            .await
    }

    fn call<'call>(
        &'call self,
        server: &'call ObjectServer,
        connection: &'call Connection,
        msg: &'call Message,
        name: MemberName<'call>,
    ) -> DispatchResult<'call> {
        self.0.call(server, connection, msg, name)
    }

    fn call_mut<'call>(
        &'call mut self,
        server: &'call ObjectServer,
        connection: &'call Connection,
        msg: &'call Message,
        name: MemberName<'call>,
    ) -> DispatchResult<'call> {
        self.0.call_mut(server, connection, msg, name)
    }

    fn introspect_to_writer(&self, writer: &mut dyn std::fmt::Write, level: usize) {
        self.0.introspect_to_writer(writer, level)
    }
}
