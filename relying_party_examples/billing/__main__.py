from relying_party_examples.billing.app import create_app
from relying_party_examples.common import serve

serve(create_app)
