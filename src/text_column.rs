//! Maps enums stored as text under a CHECK constraint to and from Postgres `text`.
//!
//! Hand-written because sqlx's `Type` derive maps a Rust enum to a Postgres enum type (or an
//! integer), not to a checked text column; the migrations keep text so a new status is an
//! `ALTER … CHECK`, not a type migration.

/// Implements sqlx's `Type`, `Encode` and `Decode` for `$name`, which must have
/// `fn as_str(self) -> &'static str` and `fn parse(&str) -> Option<Self>`. `$what` names the
/// column in the error a row with an unknown spelling gives.
macro_rules! text_column {
    ($name:ident, $what:expr) => {
        impl sqlx::Type<sqlx::Postgres> for $name {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <String as sqlx::Type<sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl sqlx::Encode<'_, sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Postgres>>::encode(self.as_str(), buf)
            }
        }

        impl sqlx::Decode<'_, sqlx::Postgres> for $name {
            fn decode(
                value: sqlx::postgres::PgValueRef<'_>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
                $name::parse(text).ok_or_else(|| format!("unknown {} {text:?}", $what).into())
            }
        }
    };
}

pub(crate) use text_column;
