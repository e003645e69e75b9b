"""English stop words for the Debian corpus: function words of three letters or more.

Shorter words never reach the list's users (the tokeniser keeps words of length >= 3), so they
are left out. Kept deliberately plain: pronouns, determiners, auxiliaries, prepositions,
conjunctions and common adverbs, nothing specific to software; plus the stems contractions leave
behind once apostrophes split words ("don't" -> "don").
"""

STOP_WORDS = frozenset(
    """
    about above across after afterwards again against all almost alone along already also although
    always among amongst and another any anyhow anyone anything anyway anywhere are around
    became because become becomes becoming been before beforehand behind being below beside besides
    between beyond both but can cannot could did does doing done down due during each either else
    elsewhere enough etc even ever every everyone everything everywhere except few for former
    formerly from further had has have having hence her here hereafter hereby herein hers herself
    him himself his how however inc indeed into its itself just last latter latterly least less
    made many may meanwhile might mine more moreover most mostly much must myself namely neither
    never nevertheless next nobody none noone nor not nothing now nowhere off often once one only
    onto other others otherwise our ours ourselves out over own per perhaps please quite rather
    really same seem seemed seeming seems several she should since some somehow someone something
    sometime sometimes somewhere still such than that the their theirs them themselves then thence
    there thereafter thereby therefore therein thereupon these they this those though through
    throughout thru thus together too toward towards under until upon very via was were what
    whatever when whence whenever where whereafter whereas whereby wherein whereupon wherever whether
    which while whither who whoever whole whom whose why will with within without would yet you
    your yours yourself yourselves
    aren couldn didn doesn don hadn hasn haven isn mustn needn shan shouldn wasn weren won wouldn
    """.split()
)
