from relying_party_examples.common import serve
from relying_party_examples.complaints.app import create_app

serve(create_app)
