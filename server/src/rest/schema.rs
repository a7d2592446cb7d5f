//! Schemas of values the REST contract bounds that have no Rust type of their own.

pub(super) struct Cidr;

impl utoipa::PartialSchema for Cidr {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        bounded_string(
            2,
            43,
            "An IPv4 or IPv6 address or CIDR range, e.g. `10.0.0.0/8` or `2001:db8::/32`.",
        )
    }
}

impl utoipa::ToSchema for Cidr {
    fn name() -> std::borrow::Cow<'static, str> {
        "Cidr".into()
    }
}

/// A string schema with length bounds.
pub(super) fn bounded_string(
    min: usize,
    max: usize,
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(min))
        .max_length(Some(max))
        .description(Some(description))
        .into()
}

pub(super) struct EmailAddress;

impl utoipa::PartialSchema for EmailAddress {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        bounded_string(3, 254, "An email address.")
    }
}

impl utoipa::ToSchema for EmailAddress {
    fn name() -> std::borrow::Cow<'static, str> {
        "EmailAddress".into()
    }
}
