//! Connections whose statements are parsed and planned once: every query goes through
//! the connection's statement cache (deadpool's `prepare_cached`), so a request costs
//! its round trips to execute and none to prepare. The wrappers keep tokio-postgres's
//! method names, so the SQL reads the same at every call site.
//!
//! Transactions are opened by hand so that `BEGIN` and the first statement (the
//! database's clock) travel in one round trip. A connection is never handed back to
//! the pool inside a transaction: one whose transaction did not end (its request was
//! cancelled, a `ROLLBACK` failed) is closed instead of returned, and the server rolls
//! the transaction back.

use deadpool_postgres::Object;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, Row, Statement};

/// A pooled connection.
pub(crate) struct Conn {
    object: Option<Object>,
    /// A transaction is open on it.
    open: bool,
}

/// The statements of an open transaction on a connection.
pub(crate) struct Tx<'a>(&'a Conn);

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl Conn {
    pub fn new(object: Object) -> Self {
        Self {
            object: Some(object),
            open: false,
        }
    }

    pub fn object(&self) -> &Object {
        // Present until drop, the only place that takes it.
        self.object.as_ref().expect("a connection until dropped")
    }

    pub fn object_mut(&mut self) -> &mut Object {
        self.object.as_mut().expect("a connection until dropped")
    }

    /// Open a transaction and run `first` in it, in one round trip.
    pub async fn begin(&mut self, first: &str, params: Params<'_>) -> Result<Row, Error> {
        self.open = true;
        let statement = self.object().prepare_cached(first).await?;
        let object = self.object();
        let (begun, row) = tokio::join!(
            object.batch_execute("BEGIN"),
            object.query_one(&statement, params)
        );
        begun?;
        row
    }

    pub async fn commit(&mut self) -> Result<(), Error> {
        self.end("COMMIT").await
    }

    pub async fn rollback(&mut self) -> Result<(), Error> {
        self.end("ROLLBACK").await
    }

    async fn end(&mut self, how: &str) -> Result<(), Error> {
        self.object().batch_execute(how).await?;
        self.open = false;
        Ok(())
    }

    pub fn tx(&self) -> Tx<'_> {
        Tx(self)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let (true, Some(object)) = (self.open, self.object.take()) {
            // Out of the pool, and closed with it.
            drop(Object::take(object));
        }
    }
}

macro_rules! cached_queries {
    ($wrapper:ty, $client:ident => $object:expr) => {
        impl $wrapper {
            pub async fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Error> {
                let $client = self;
                let statement = $object.prepare_cached(sql).await?;
                $object.query(&statement, params).await
            }

            pub async fn query_one(&self, sql: &str, params: Params<'_>) -> Result<Row, Error> {
                let $client = self;
                let statement = $object.prepare_cached(sql).await?;
                $object.query_one(&statement, params).await
            }

            pub async fn query_opt(
                &self,
                sql: &str,
                params: Params<'_>,
            ) -> Result<Option<Row>, Error> {
                let $client = self;
                let statement = $object.prepare_cached(sql).await?;
                $object.query_opt(&statement, params).await
            }

            pub async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, Error> {
                let $client = self;
                let statement = $object.prepare_cached(sql).await?;
                $object.execute(&statement, params).await
            }
        }
    };
}

cached_queries!(Conn, conn => conn.object());
cached_queries!(Tx<'_>, tx => tx.0.object());

/// Statements sent together (one round trip) must be prepared first: a statement
/// still being prepared would go out after one that was cached already, and
/// statements that take row locks must keep their order (the deadlock this avoids was
/// seen: a scope row locked before its number's send history).
impl Tx<'_> {
    pub async fn prepare(&self, sql: &str) -> Result<Statement, Error> {
        self.0.object().prepare_cached(sql).await
    }

    /// Sent when first polled: in a `join!`, in argument order.
    pub async fn run(&self, statement: &Statement, params: Params<'_>) -> Result<u64, Error> {
        self.0.object().execute(statement, params).await
    }

    pub async fn run_one(&self, statement: &Statement, params: Params<'_>) -> Result<Row, Error> {
        self.0.object().query_one(statement, params).await
    }

    pub async fn run_opt(
        &self,
        statement: &Statement,
        params: Params<'_>,
    ) -> Result<Option<Row>, Error> {
        self.0.object().query_opt(statement, params).await
    }
}
