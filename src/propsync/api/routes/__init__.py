"""One APIRouter per resource: tracking, customers, the profile page, operations."""
