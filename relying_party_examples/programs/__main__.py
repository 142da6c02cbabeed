from relying_party_examples.common import serve
from relying_party_examples.programs.app import create_app

serve(create_app)
